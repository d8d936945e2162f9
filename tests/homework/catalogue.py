"""A solution of every homework task, written as a student fills the stubs, and a catalogue of mistakes.

The solutions are independent of the book's code (they are the homework's stubs filled in by hand,
in the homework's own style). Each :class:`Mistake` is a solution with one edit that a student
makes, and the words its check's message must contain.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgm.homework import TASKS


def _fill(name: str, *code: tuple[str, str]) -> str:
    """The stub of ``name`` with each ``raise NotImplementedError("<where>: your code")`` replaced."""
    source = TASKS[name].stub
    for where, body in code:
        marker = f'raise NotImplementedError("{where}: your code")'
        assert marker in source, (name, where)
        indent = source.split(marker)[0].rsplit("\n", 1)[1]
        source = source.replace(marker, body.strip("\n").replace("\n", "\n" + indent))
    assert "NotImplementedError" not in source, name
    return source


SOLUTIONS = {
    "get_normal_KL": _fill(
        "get_normal_KL",
        (
            "get_normal_KL",
            """
var_1, var_2 = torch.exp(2 * log_std_1), torch.exp(2 * log_std_2)
return log_std_2 - log_std_1 + (var_1 + (mean_1 - mean_2) ** 2) / (2 * var_2) - 0.5
""",
        ),
    ),
    "get_normal_nll": _fill(
        "get_normal_nll",
        (
            "get_normal_nll",
            """
return log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * torch.exp(2 * log_std))
""",
        ),
    ).replace("import torch\n", "import numpy as np\nimport torch\n", 1),
    "FullyConnectedMLP": _fill(
        "FullyConnectedMLP",
        (
            "FullyConnectedMLP.__init__",
            """
sizes = [input_shape] + hiddens + [output_shape]
for i in range(len(sizes) - 1):
    model.append(nn.Linear(sizes[i], sizes[i + 1]))
    if i < len(sizes) - 2:
        model.append(nn.ReLU())
""",
        ),
        ("FullyConnectedMLP.forward", "return self.net(x)"),
    ),
    "VAE2d": _fill(
        "VAE2d",
        (
            "VAE2d.__init__",
            """
self.encoder = FullyConnectedMLP(n_in, enc_hidden_sizes, 2 * n_latent)
self.decoder = FullyConnectedMLP(n_latent, dec_hidden_sizes, 2 * n_in)
""",
        ),
        ("VAE2d.prior", "return torch.randn(n, self.n_latent, device=next(self.parameters()).device)"),
        (
            "VAE2d.forward",
            """
mu_z, log_std_z = self.encoder(x).chunk(2, dim=1)
z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])
mu_x, log_std_x = self.decoder(z).chunk(2, dim=1)
""",
        ),
        (
            "VAE2d.loss",
            """
recon_loss = get_normal_nll(x, mu_x, log_std_x).sum(dim=1).mean()
kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()
""",
        ),
        (
            "VAE2d.sample",
            """
mu, log_std = self.decoder(self.prior(n)).chunk(2, dim=1)
z = mu + torch.exp(log_std) * torch.randn_like(mu) if sample_from_decoder else mu
""",
        ),
    ),
    "ConvEncoder": _fill(
        "ConvEncoder",
        (
            "ConvEncoder.__init__",
            """
c = input_shape[0]
self.convs = nn.Sequential(
    nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
    nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
    nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
    nn.Conv2d(128, 256, 3, stride=2, padding=1),
)
self.fc = nn.Linear(256 * (input_shape[1] // 8) * (input_shape[2] // 8), 2 * n_latent)
""",
        ),
        (
            "ConvEncoder.forward",
            """
h = self.convs(x).reshape(x.shape[0], -1)
mu, log_std = self.fc(h).chunk(2, dim=1)
""",
        ),
    ),
    "ConvDecoder": _fill(
        "ConvDecoder",
        (
            "ConvDecoder.__init__",
            """
self.fc = nn.Linear(n_latent, 128 * self.base_size[1] * self.base_size[2])
self.convs = nn.Sequential(
    nn.ReLU(),
    nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1), nn.ReLU(),
    nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(),
    nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
    nn.ConvTranspose2d(32, output_shape[0], 3, padding=1),
)
""",
        ),
        (
            "ConvDecoder.forward",
            """
out = self.convs(self.fc(z).reshape(-1, *self.base_size))
""",
        ),
    ),
    "ConvVAE": _fill(
        "ConvVAE",
        (
            "ConvVAE.__init__",
            """
self.encoder = ConvEncoder(input_shape, n_latent)
self.decoder = ConvDecoder(n_latent, input_shape)
""",
        ),
        ("ConvVAE.prior", "z = torch.randn(n, self.n_latent, device=next(self.parameters()).device)"),
        (
            "ConvVAE.forward",
            """
mu_z, log_std_z = self.encoder(x)
z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])
x_recon = self.decoder(z)
""",
        ),
        (
            "ConvVAE.loss",
            """
mu_z, log_std_z, x_recon = self(x)
recon_loss = get_normal_nll(x, x_recon, torch.zeros_like(x_recon)).sum(dim=(1, 2, 3)).mean()
kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()
""",
        ),
        ("ConvVAE.sample", "x_recon = self.decoder(self.prior(n))"),
    ),
    "settings_2d": TASKS["settings_2d"]
    .stub.replace("ENC_HIDDEN_SIZES = None", "ENC_HIDDEN_SIZES = [16, 16]")
    .replace("DEC_HIDDEN_SIZES = None", "DEC_HIDDEN_SIZES = [16, 16]")
    .replace("BATCH_SIZE = None", "BATCH_SIZE = 256")
    .replace("EPOCHS = None", "EPOCHS = 2")
    .replace("LR = None", "LR = 3e-3"),
    "settings_cifar10": TASKS["settings_cifar10"]
    .stub.replace("BATCH_SIZE = None", "BATCH_SIZE = 32")
    .replace("EPOCHS = None", "EPOCHS = 1")
    .replace("LR = None", "LR = 5e-4")
    .replace("N_LATENS = None", "N_LATENS = 130")
    .replace("BETA = None", "BETA = 1.0"),
}
#: The classes of the CIFAR-10 chapter use the encoder and decoder of its own notebook.
NEEDS_SOURCE = {
    "ConvVAE": ("ConvEncoder", "ConvDecoder"),
    "VAE2d": ("FullyConnectedMLP", "get_normal_nll", "get_normal_KL"),
}


@dataclass(frozen=True)
class Edit:
    """A solution of ``task`` with ``old`` (found exactly once) replaced by ``new``."""

    task: str
    what: str
    old: str
    new: str

    @property
    def source(self) -> str:
        solution = SOLUTIONS[self.task]
        assert solution.count(self.old) == 1, (self.task, self.what, self.old)
        return solution.replace(self.old, self.new)


@dataclass(frozen=True)
class Mistake(Edit):
    """A wrong solution: its check must fail with a message that contains ``hint``."""

    hint: str


MISTAKES = [
    # get_normal_KL
    Mistake(
        "get_normal_KL",
        "variance for std",
        "torch.exp(2 * log_std_1), torch.exp(2 * log_std_2)",
        "torch.exp(log_std_1), torch.exp(log_std_2)",
        "standard deviation is used where the formula has the variance",
    ),
    Mistake(
        "get_normal_KL",
        "log-std read as log-variance",
        "var_1, var_2 = torch.exp(2 * log_std_1), torch.exp(2 * log_std_2)\n    return log_std_2 - log_std_1",
        "var_1, var_2 = torch.exp(log_std_1), torch.exp(log_std_2)\n    return (log_std_2 - log_std_1) / 2",
        "log of the variance",
    ),
    Mistake("get_normal_KL", "factor 1/2 missing", "/ (2 * var_2)", "/ var_2", "a factor 1/2 is missing"),
    Mistake("get_normal_KL", "constant missing", " - 0.5\n", "\n", "constant -1/2 is missing"),
    Mistake(
        "get_normal_KL",
        "arguments swapped",
        "return log_std_2 - log_std_1 + (var_1 + (mean_1 - mean_2) ** 2) / (2 * var_2)",
        "return log_std_1 - log_std_2 + (var_2 + (mean_1 - mean_2) ** 2) / (2 * var_1)",
        "arguments are swapped",
    ),
    Mistake(
        "get_normal_KL",
        "a sum, not elementwise",
        "return log_std_2 - log_std_1 + (var_1 + (mean_1 - mean_2) ** 2) / (2 * var_2) - 0.5",
        "return (log_std_2 - log_std_1 + (var_1 + (mean_1 - mean_2) ** 2) / (2 * var_2) - 0.5).sum()",
        "the homework means an elementwise result",
    ),
    Mistake(
        "get_normal_KL", "no return", "    return log_std_2", "    kl = log_std_2", "a `return` is missing"
    ),
    Mistake(
        "get_normal_nll", "log 2 pi missing", " + 0.5 * np.log(2 * np.pi)", "", "1/2 log(2 pi) is missing"
    ),
    Mistake(
        "get_normal_nll",
        "log 2 pi without 1/2",
        "0.5 * np.log(2 * np.pi)",
        "np.log(2 * np.pi)",
        "log(2 pi) needs the factor 1/2",
    ),
    Mistake(
        "get_normal_nll",
        "variance for std",
        "(2 * torch.exp(2 * log_std))",
        "(2 * torch.exp(log_std))",
        "divided by the standard deviation",
    ),
    Mistake(
        "get_normal_nll",
        "factor 1/2 missing",
        "(2 * torch.exp(2 * log_std))",
        "torch.exp(2 * log_std)",
        "a factor 1/2 is missing",
    ),
    Mistake(
        "get_normal_nll",
        "positive log-likelihood",
        "return log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * torch.exp(2 * log_std))",
        "return -(log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * torch.exp(2 * log_std)))",
        "this is the log-likelihood",
    ),
    Mistake(
        "get_normal_nll",
        "detached",
        "return log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * torch.exp(2 * log_std))",
        "return (log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * "
        "torch.exp(2 * log_std))).detach()",
        "carries no gradient",
    ),
    # FullyConnectedMLP
    Mistake(
        "FullyConnectedMLP",
        "ReLU after the last layer",
        "    if i < len(sizes) - 2:\n                model.append(nn.ReLU())",
        "    model.append(nn.ReLU())",
        "the last layer is a ReLU",
    ),
    Mistake(
        "FullyConnectedMLP",
        "hidden sizes ignored",
        "sizes = [input_shape] + hiddens + [output_shape]",
        "sizes = [input_shape, output_shape]",
        "has dense layers",
    ),
    Mistake(
        "FullyConnectedMLP",
        "no ReLU",
        "\n            if i < len(sizes) - 2:\n                model.append(nn.ReLU())",
        "",
        "ReLU layers, expected",
    ),
    Mistake(
        "FullyConnectedMLP", "forward without return", "return self.net(x)", "self.net(x)", "returned None"
    ),
    # VAE2d
    Mistake(
        "VAE2d",
        "no reparameterisation",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = torch.normal(mu_z, torch.exp(log_std_z))",
        "sends no gradient to the encoder",
    ),
    Mistake(
        "VAE2d",
        "z detached",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = (mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])).detach()",
        "sends no gradient to the encoder",
    ),
    Mistake(
        "VAE2d",
        "variance for std in z",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z + torch.exp(2 * log_std_z) * self.prior(x.shape[0])",
        "scaled by exp(2 * log_std_z), the variance",
    ),
    Mistake(
        "VAE2d",
        "no noise",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z",
        "no noise is drawn",
    ),
    Mistake(
        "VAE2d",
        "recon summed over the batch",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x).sum(dim=1).mean()",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x).sum()",
        "recon_loss is summed over the batch",
    ),
    Mistake(
        "VAE2d",
        "recon averaged over dimensions",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x).sum(dim=1).mean()",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x).mean()",
        "averaged over the data's dimensions",
    ),
    Mistake(
        "VAE2d",
        "KL swapped",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = get_normal_KL(torch.zeros_like(mu_z), "
        "torch.zeros_like(log_std_z), mu_z, log_std_z).sum(dim=1).mean()",
        "the arguments are swapped",
    ),
    Mistake(
        "VAE2d",
        "KL over latent dims averaged",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = get_normal_KL(mu_z, log_std_z).mean()",
        "averaged over the latent dimensions",
    ),
    Mistake(
        "VAE2d",
        "outputs in the wrong order",
        "mu_z, log_std_z = self.encoder(x).chunk(2, dim=1)",
        "log_std_z, mu_z = self.encoder(x).chunk(2, dim=1)",
        "holds what belongs in another output",
    ),
    Mistake(
        "VAE2d",
        "prior of the data's size",
        "return torch.randn(n, self.n_latent,",
        "return torch.randn(n, 2,",
        "prior(20000) has shape",
    ),
    Mistake(
        "VAE2d",
        "prior uniform",
        "return torch.randn(n, self.n_latent,",
        "return torch.rand(n, self.n_latent,",
        "standard normal",
    ),
    Mistake(
        "VAE2d",
        "sample without decoder noise",
        "z = mu + torch.exp(log_std) * torch.randn_like(mu) if sample_from_decoder else mu",
        "z = mu",
        "no noise is drawn",
    ),
    Mistake(
        "VAE2d",
        "sample with the variance",
        "z = mu + torch.exp(log_std) * torch.randn_like(mu) if sample_from_decoder else mu",
        "z = mu + torch.exp(2 * log_std) * torch.randn_like(mu) if sample_from_decoder else mu",
        "the variance",
    ),
    Mistake(
        "VAE2d",
        "sample returns a tensor",
        "        return z.cpu().numpy()",
        "        return z",
        "returns numpy",
    ),
    # ConvEncoder, ConvDecoder
    Mistake(
        "ConvEncoder",
        "mu and log_std the same",
        "mu, log_std = self.fc(h).chunk(2, dim=1)",
        "mu = log_std = self.fc(h)[:, :self.n_latent]",
        "the same numbers",
    ),
    Mistake(
        "ConvEncoder",
        "no split",
        "mu, log_std = self.fc(h).chunk(2, dim=1)",
        "mu, log_std = self.fc(h), self.fc(h)",
        "has shape",
    ),
    Mistake(
        "ConvDecoder",
        "sigmoid at the end",
        "nn.ConvTranspose2d(32, output_shape[0], 3, padding=1),\n",
        "nn.ConvTranspose2d(32, output_shape[0], 3, padding=1), nn.Sigmoid(),\n",
        "can never be negative",
    ),
    Mistake(
        "ConvDecoder",
        "one upsampling too few",
        "    nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1), nn.ReLU(),\n",
        "",
        "has shape",
    ),
    # ConvVAE
    Mistake(
        "ConvVAE",
        "beta not applied",
        '"elbo_loss": recon_loss + self.beta * kl_loss',
        '"elbo_loss": recon_loss + kl_loss',
        "beta is not applied",
    ),
    Mistake(
        "ConvVAE",
        "beta inside kl_loss",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = self.beta * get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss includes beta",
    ),
    Mistake(
        "ConvVAE",
        "mean squared error",
        "recon_loss = get_normal_nll(x, x_recon, torch.zeros_like(x_recon)).sum(dim=(1, 2, 3)).mean()",
        "recon_loss = ((x - x_recon) ** 2).sum(dim=(1, 2, 3)).mean()",
        "sum of squared errors",
    ),
    Mistake(
        "ConvVAE",
        "no reparameterisation",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = (mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])).detach()",
        "sends no gradient to the encoder",
    ),
    Mistake(
        "ConvVAE",
        "log-std as log-variance",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z + torch.exp(0.5 * log_std_z) * self.prior(x.shape[0])",
        "as if log_std_z were a log-variance",
    ),
    Mistake(
        "ConvVAE",
        "samples not decoded from the prior",
        "x_recon = self.decoder(self.prior(n))",
        "x_recon = self.decoder(torch.zeros(n, self.n_latent))",
        "are not draws of the standard normal",
    ),
    # found by review: half a reparameterisation, a detached KL, codes that are no prior draws, ...
    Mistake(
        "VAE2d",
        "mu_z detached in z",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z.detach() + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "no gradient to mu_z",
    ),
    Mistake(
        "VAE2d",
        "std detached in z",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z + torch.exp(log_std_z).detach() * self.prior(x.shape[0])",
        "no gradient to log_std_z",
    ),
    Mistake(
        "VAE2d",
        "KL detached",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = get_normal_KL(mu_z.detach(), log_std_z.detach()).sum(dim=1).mean()",
        "kl_loss sends no gradient to mu_z and log_std_z",
    ),
    Mistake(
        "VAE2d",
        "one noise for every dimension",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z + torch.exp(log_std_z) * torch.randn(x.shape[0], 1)",
        "the same in every dimension",
    ),
    Mistake(
        "VAE2d",
        "log_std_x detached",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x).sum(dim=1).mean()",
        "recon_loss = get_normal_nll(x, mu_x, log_std_x.detach()).sum(dim=1).mean()",
        "no gradient to log_std_x",
    ),
    Mistake(
        "VAE2d",
        "KL with log_std as a log-variance",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = (-0.5 * (1 + log_std_z - mu_z**2 - torch.exp(log_std_z))).sum(dim=1).mean()",
        "reads log_std_z as a log-variance",
    ),
    Mistake(
        "VAE2d",
        "hidden sizes swapped",
        "self.encoder = FullyConnectedMLP(n_in, enc_hidden_sizes, 2 * n_latent)",
        "self.encoder = FullyConnectedMLP(n_in, dec_hidden_sizes, 2 * n_latent)",
        "has the dense layers",
    ),
    Mistake(
        "VAE2d",
        "sample decodes uniform codes",
        "mu, log_std = self.decoder(self.prior(n)).chunk(2, dim=1)",
        "mu, log_std = self.decoder(torch.rand(n, self.n_latent)).chunk(2, dim=1)",
        "are not draws of the standard normal",
    ),
    Mistake(
        "ConvDecoder",
        "functional sigmoid at the end",
        "out = self.convs(self.fc(z).reshape(-1, *self.base_size))",
        "out = torch.sigmoid(self.convs(self.fc(z).reshape(-1, *self.base_size)))",
        "can never be negative",
    ),
    Mistake(
        "ConvEncoder",
        "ReLU on the outputs",
        "mu, log_std = self.fc(h).chunk(2, dim=1)",
        "mu, log_std = torch.relu(self.fc(h)).chunk(2, dim=1)",
        "can never be negative",
    ),
    Mistake(
        "ConvEncoder",
        "a list, not a tuple",
        "        return mu, log_std",
        "        return [mu, log_std]",
        "should return a tuple (mu, log_std)",
    ),
    Mistake(
        "ConvVAE",
        "mean squared error averaged",
        "recon_loss = get_normal_nll(x, x_recon, torch.zeros_like(x_recon)).sum(dim=(1, 2, 3)).mean()",
        "recon_loss = ((x - x_recon) ** 2).mean()",
        "the mean squared error",
    ),
    Mistake(
        "ConvVAE",
        "mu_z detached in z",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z.detach() + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "no gradient to mu_z",
    ),
    Mistake(
        "ConvVAE",
        "KL detached",
        "kl_loss = get_normal_KL(mu_z, log_std_z).sum(dim=1).mean()",
        "kl_loss = get_normal_KL(mu_z.detach(), log_std_z.detach()).sum(dim=1).mean()",
        "kl_loss sends no gradient",
    ),
    Mistake(
        "ConvVAE",
        "samples from a shifted prior",
        "x_recon = self.decoder(self.prior(n))",
        "x_recon = self.decoder(self.prior(n) + 1)",
        "are not draws of the standard normal",
    ),
    # settings
    Mistake("settings_2d", "too many epochs", "EPOCHS = 2", "EPOCHS = 12", "outside the homework's limits"),
    Mistake("settings_2d", "learning rate too high", "LR = 3e-3", "LR = 0.05", "LR = 0.05 is outside"),
    Mistake(
        "settings_2d",
        "hidden sizes a tuple",
        "ENC_HIDDEN_SIZES = [16, 16]",
        "ENC_HIDDEN_SIZES = (16, 16)",
        "should be a list of positive integers",
    ),
    Mistake(
        "settings_cifar10",
        "latent size too small",
        "N_LATENS = 130",
        "N_LATENS = 64",
        "N_LATENS = 64 is outside",
    ),
    Mistake("settings_cifar10", "beta not set", "BETA = 1.0", "BETA = None", "BETA is not set"),
    Mistake("settings_cifar10", "epochs a float", "EPOCHS = 1", "EPOCHS = 1.0", "should be an integer"),
]


class Alternative(Edit):
    """A right solution written otherwise: it must pass."""


_KL = "return log_std_2 - log_std_1 + (var_1 + (mean_1 - mean_2) ** 2) / (2 * var_2) - 0.5"
_NLL = "return log_std + 0.5 * np.log(2 * np.pi) + (x - mean) ** 2 / (2 * torch.exp(2 * log_std))"
_MLP_LOOP = """for i in range(len(sizes) - 1):
            model.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                model.append(nn.ReLU())"""
ALTERNATIVES = [
    Alternative(
        "get_normal_KL",
        "torch.distributions",
        _KL,
        "p = torch.distributions.Normal(mean_1.float(), torch.exp(log_std_1.float()))\n"
        "    q = torch.distributions.Normal(mean_2.float(), torch.exp(log_std_2.float()))\n"
        "    return torch.distributions.kl_divergence(p, q)",
    ),
    Alternative(
        "get_normal_KL",
        "float casts and the log-variance",
        _KL,
        "m1, l1, m2, l2 = (t.float() for t in (mean_1, log_std_1, mean_2, log_std_2))\n"
        "    log_var_1, log_var_2 = 2 * l1, 2 * l2\n"
        "    return 0.5 * (log_var_2 - log_var_1 + (torch.exp(log_var_1) + (m1 "
        "- m2) ** 2) / torch.exp(log_var_2)"
        " - 1)",
    ),
    Alternative(
        "get_normal_nll",
        "torch.distributions",
        _NLL,
        "return -torch.distributions.Normal(mean.float(), torch.exp(log_std.float())).log_prob(x.float())",
    ),
    Alternative(
        "FullyConnectedMLP",
        "nested blocks",
        _MLP_LOOP,
        """for i in range(len(sizes) - 2):
            model.append(nn.Sequential(nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()))
        model.append(nn.Linear(sizes[-2], sizes[-1]))""",
    ),
    Alternative(
        "VAE2d",
        "randn_like and Sequential networks",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = mu_z + torch.exp(log_std_z) * torch.randn_like(mu_z)",
    ),
    Alternative(
        "VAE2d",
        "rsample",
        "z = mu_z + torch.exp(log_std_z) * self.prior(x.shape[0])",
        "z = torch.distributions.Normal(mu_z, torch.exp(log_std_z)).rsample()",
    ),
    Alternative(
        "ConvDecoder",
        "tanh at the end",
        "nn.ConvTranspose2d(32, output_shape[0], 3, padding=1),\n",
        "nn.ConvTranspose2d(32, output_shape[0], 3, padding=1), nn.Tanh(),\n",
    ),
    Alternative(
        "ConvDecoder",
        "2 sigmoid - 1 at the end",
        "out = self.convs(self.fc(z).reshape(-1, *self.base_size))",
        "out = 2 * torch.sigmoid(self.convs(self.fc(z).reshape(-1, *self.base_size))) - 1",
    ),
    Alternative(
        "ConvDecoder",
        "batch norm",
        "self.convs = nn.Sequential(\n            nn.ReLU(),",
        "self.convs = nn.Sequential(\n            nn.BatchNorm2d(128), nn.ReLU(),",
    ),
    Alternative(
        "ConvVAE",
        "encoder and decoder called directly in the loss",
        "mu_z, log_std_z, x_recon = self(x)",
        "mu_z, log_std_z = self.encoder(x)\n"
        "        x_recon = self.decoder(z=mu_z + torch.exp(log_std_z) * torch.randn_like(mu_z))",
    ),
]
#: A ConvEncoder with an argument of its own, and a ConvVAE that uses it: the book's cannot be lent.
WIDE_ENCODER = (
    SOLUTIONS["ConvEncoder"]
    .replace(
        "def __init__(self, input_shape: tuple, n_latent: int) -> None:",
        "def __init__(self, input_shape: tuple, n_latent: int, width: int = 32) -> None:",
    )
    .replace(
        "nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),\n            nn.Conv2d(32, 64,",
        "nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),\n            nn.Conv2d(width, 64,",
    )
)
WIDE_VAE = SOLUTIONS["ConvVAE"].replace(
    "self.encoder = ConvEncoder(input_shape, n_latent)",
    "self.encoder = ConvEncoder(input_shape, n_latent, width=16)",
)

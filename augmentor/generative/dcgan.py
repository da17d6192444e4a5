"""DCGAN after Radford et al.: transposed-conv generator, strided-conv discriminator, BatchNorm, LeakyReLU.

Class conditioning: a label embedding joins the latent code in the generator; the discriminator uses a
projection (Miyato & Koyama): its score gains the inner product of a class embedding with its features.
Pure modules, no I/O. Images are in [-1, 1] (tanh); ``to_unit`` maps them to [0, 1]. ``AdversarialTraining`` is
the kind's training hook (its optimisers and step), importing nothing of training until it is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from augmentor.generative.layers import (
    ClassEmbedding,
    LatentDecoder,
    Resize,
    down_convs,
    internal_size,
    ladder,
    up_convs,
)

if TYPE_CHECKING:
    from augmentor.generative.kinds import StepInputs


class DCGANGenerator(LatentDecoder):
    """Latent code (+ class) → image in [-1, 1]."""

    def __init__(
        self, latent_dim: int = 64, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64
    ) -> None:
        super().__init__(latent_dim, num_classes, image_size, width)
        grid = self.widths[0] * self.base * self.base
        self.embed = ClassEmbedding(num_classes, latent_dim)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + self.embed.dim, grid, bias=False), nn.BatchNorm1d(grid), nn.ReLU(inplace=True)
        )
        # No conv bias before BatchNorm, which would cancel it (Radford et al.).
        # Made at the internal size; resized to the data's last when they differ (no weights: the keys stay).
        fit = [Resize(image_size)] if self.resized else []
        self.body = nn.Sequential(*up_convs(self.widths, channels, bias=False), nn.Tanh(), *fit)
        init_dcgan(self)
        if self.embed.table is not None:
            # Orthonormal class codes (one-hot-like), small beside the latent code's norm: with large codes the
            # generator learned to ignore z entirely (a per-class collapse); with these it keeps both.
            nn.init.orthogonal_(self.embed.table.weight)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.lift(z, labels, self.embed, self.project))

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Generator output → [0, 1]."""
        return (images.float() + 1) / 2


class DCGANDiscriminator(nn.Module):
    """Image (+ class) → one real/fake logit per image."""

    def __init__(self, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64) -> None:
        super().__init__()
        base, widths = ladder(image_size, width)
        # Images of the data's size are brought to the internal size the strided convs halve to the base grid.
        inner = internal_size(image_size)
        self.fit = Resize(inner) if inner != image_size else nn.Identity()
        widths = widths[::-1]  # narrow at full resolution, widest at the base grid
        self.body = nn.Sequential(*down_convs(channels, widths, bias=False))
        self.score = nn.Linear(widths[-1] * base * base, 1)
        self.embed = ClassEmbedding(num_classes, widths[-1])
        init_dcgan(self)
        if self.embed.table is not None:
            nn.init.normal_(self.embed.table.weight)  # a projection term strong enough to enforce the class

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(self.fit(images))
        out = self.score(h.flatten(1)).squeeze(1)
        if self.embed.table is not None:
            # Projection on the spatially pooled features: ⟨embed(y), mean h⟩ joins the unconditional score.
            out = out + (self.embed(labels, h.shape[0], h.device) * h.mean(dim=(2, 3))).sum(dim=1)
        return out


def init_dcgan(module: nn.Module) -> None:
    """Radford et al.'s initialisation: N(0, 0.02) weights, BatchNorm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


ADA_IMAGES = 20_000  # images over which the adaptive probability can go from 0 to 1 (few-shot runs are short)


class AdversarialTraining:
    """The DCGAN kind's training hook: two Adam optimisers (β1 0.5) and the GAN step (non-saturating or hinge
    loss), with DiffAugment on everything the discriminator sees when asked. ``generative.train`` owns the rest."""

    def __init__(self, models: dict[str, nn.Module], config: Any, device: torch.device, distributed: bool) -> None:
        from augmentor.distributed import data_parallel

        self.models, self.config = models, config
        betas = (0.5, 0.999)
        self.optimizers = {  # fused Adam: one kernel per step
            "generator": torch.optim.Adam(models["generator"].parameters(), lr=config.lr, betas=betas, fused=True),
            "discriminator": torch.optim.Adam(
                models["discriminator"].parameters(), lr=config.lr_d, betas=betas, fused=True
            ),
        }
        # Under torchrun: DDP views that average gradients over the ranks.
        self.parallel = {name: data_parallel.wrap(m, device) for name, m in models.items()} if distributed else {}
        self.distributed = distributed
        self.hinge = getattr(config, "gan_loss", "non-saturating") == "hinge"
        # Adaptive DiffAugment (StyleGAN2-ADA's rule, Karras et al. 2020): the probability of each augmentation
        # starts at 0 and moves by a step's images / ADA_IMAGES up while the discriminator is surer of the real
        # images than ``ada_target`` (the mean sign of its real logits), down while it is less sure.
        self.ada_target = getattr(config, "ada_target", None)
        self.probability = torch.zeros((), device=device) if self.ada_target is not None else None

    def state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps besides the models and optimisers: the adaptive probability."""
        return {"ada_probability": self.probability.detach().clone()} if self.probability is not None else {}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.probability is not None and "ada_probability" in tensors:
            self.probability = tensors["ada_probability"].to(self.probability.device).reshape(())

    def step(self, batch: StepInputs) -> dict[str, torch.Tensor]:
        """One discriminator and one generator update on a uint8 batch; ``share`` scales this rank's losses."""
        from augmentor.generative.diffaugment import diff_augment

        g, d = self.models["generator"], self.models["discriminator"]
        g_parallel, d_parallel = self.parallel.get("generator", g), self.parallel.get("discriminator", d)
        labels, generator, share = batch.labels, batch.generator, batch.share
        real = batch.images.float() / 127.5 - 1
        fake = g_parallel(batch.noise(len(real), g.latent_dim), labels)
        augment = self.config.diffaugment or self.probability is not None

        def view(x: torch.Tensor) -> torch.Tensor:
            return diff_augment(x, generator, self.probability) if augment else x

        real_logits = d_parallel(view(real), labels).float()
        fake_logits = d_parallel(view(fake.detach()), labels).float()
        if self.hinge:
            d_loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        else:
            d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        (d_loss * share if share != 1.0 else d_loss).backward()
        self.optimizers["discriminator"].step()
        # The plain D (not its DDP view): only G's gradients are wanted, and G's DDP view reduces them.
        g_logits = d(view(fake), labels).float()
        g_loss = -g_logits.mean() if self.hinge else F.softplus(-g_logits).mean()  # hinge's or the non-saturating
        self.optimizers["generator"].zero_grad(set_to_none=True)
        # D's gradients from this pass would be discarded anyway: not computing them saves time.
        d.requires_grad_(False)
        (g_loss * share if share != 1.0 else g_loss).backward()
        d.requires_grad_(True)
        self.optimizers["generator"].step()
        losses = {"loss": d_loss.detach() + g_loss.detach(), "d_loss": d_loss.detach(), "g_loss": g_loss.detach()}
        if self.probability is not None:
            losses["ada_p"] = self._adapt(real_logits.detach(), len(real))
        return losses

    def _adapt(self, real_logits: torch.Tensor, rows: int) -> torch.Tensor:
        """One ADA update from this step's real logits (averaged over the ranks): the new probability."""
        overfit = torch.stack([real_logits.sign().sum(), torch.tensor(float(rows), device=real_logits.device)])
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(overfit)
        heuristic = overfit[0] / overfit[1]
        step = torch.sign(heuristic - self.ada_target) * overfit[1] / ADA_IMAGES
        self.probability = (self.probability + step).clamp(0.0, 1.0)
        return self.probability.detach().clone()

"""Image restoration: metrics, degradations, models, data, plug-and-play and the `dlfound restore` command."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, SHARED_DATA, read_results, run_folders
from dlfound.data import degradations as D
from dlfound.metrics.restoration import psnr, ssim
from dlfound.ops.blur import blur, gaussian_kernel
from dlfound.ops.resize import imresize, modcrop

RESTORATION_MODELS = ("dncnn", "srcnn", "vdsr", "unet")
EXPERIMENTS = ("dncnn_sigma25", "dncnn_blind", "unet_sigma25", "srcnn_x3", "vdsr_x2")


pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_image(h: int, w: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """A natural-ish test image in [0, 1]: smoothed noise plus an edge, [1, C, H, W]."""
    g = torch.Generator().manual_seed(seed)
    x = blur(torch.rand(1, channels, h, w, generator=g), gaussian_kernel(9, 2.0))
    x = (x - x.min()) / (x.max() - x.min())
    x[..., :, : w // 3] *= 0.5
    return x


def write_png(path, x: torch.Tensor) -> None:
    array = x[0].mul(255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def make_sets(root, sets: dict) -> None:
    """sets: folder -> (count, (H, W), channels): tiny PNG image folders."""
    for i, (name, (count, (h, w), c)) in enumerate(sets.items()):
        (root / name).mkdir(parents=True)
        for j in range(count):
            write_png(root / name / f"{j:03d}.png", smooth_image(h, w, c, seed=100 * i + j))


# -- metrics -------------------------------------------------------------------------------------------------
def test_psnr_matches_hand_computed_values():
    x = torch.zeros(1, 1, 4, 4)
    assert psnr(x + 0.1, x).item() == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 20 dB
    # One pixel off by 0.5 out of 16: MSE = 0.25 / 16, PSNR = 10 log10(64).
    y = x.clone()
    y[0, 0, 0, 0] = 0.5
    assert psnr(y, x).item() == pytest.approx(10 * math.log10(64), abs=1e-4)
    # Shaving a 1-pixel border removes the corner error entirely; the rest is off by 0.01 -> 40 dB.
    z = x + 0.01
    z[0, 0, 0, 0] = 0.9
    assert psnr(z, x, shave=1).item() == pytest.approx(40.0, abs=1e-3)
    # On the luma: RGB (0.1, 0.2, 0.3) vs black differ in Y by (65.481*.1 + 128.553*.2 + 24.966*.3) / 255.
    rgb = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    dy = (65.481 * 0.1 + 128.553 * 0.2 + 24.966 * 0.3) / 255
    assert psnr(rgb, torch.zeros_like(rgb), y_channel=True).item() == pytest.approx(-20 * math.log10(dy), abs=1e-3)
    assert psnr(torch.ones(2, 3, 5, 5), torch.ones(2, 3, 5, 5) * 0.9).shape == (2,)


def ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 written out window by window: 11x11 Gaussian (sigma 1.5), valid windows only."""
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_hand_computed_values():
    x = torch.rand(1, 1, 14, 13, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    # Two flat images a and b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.6, 1e-4
    flat = ssim(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b)).item()
    assert flat == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    y = (x + 0.2 * torch.rand(1, 1, 14, 13, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert ssim(x, y).item() == pytest.approx(
        ssim_by_hand(x[0, 0].double().numpy(), y[0, 0].double().numpy()), abs=1e-5
    )
    # RGB: the mean over channels.
    rgb_x, rgb_y = x.expand(1, 3, 14, 13), y.expand(1, 3, 14, 13)
    assert ssim(rgb_x, rgb_y).item() == pytest.approx(ssim(x, y).item(), abs=1e-6)


# -- degradations --------------------------------------------------------------------------------------------
def test_noise_is_reproducible_by_seed_with_the_stated_std():
    x = torch.full((2, 1, 128, 128), 0.5)
    a = D.gaussian_noise(x, 25, torch.Generator().manual_seed(3))
    b = D.gaussian_noise(x, 25, torch.Generator().manual_seed(3))
    c = D.gaussian_noise(x, 25, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).std().item() * 255 == pytest.approx(25, rel=0.03)
    assert (a - x).mean().abs().item() * 255 < 0.5
    # Blind: one level per image, drawn within the range.
    blind = D.gaussian_noise(torch.zeros(64, 1, 32, 32), [10, 50], torch.Generator().manual_seed(0))
    stds = blind.flatten(1).std(1) * 255
    assert stds.min() > 8 and stds.max() < 53 and stds.std() > 5


def test_bicubic_sizes_and_matlab_conventions():
    x = smooth_image(37, 50)
    for scale in (2, 3, 4):
        low = imresize(x, 1 / scale)
        assert low.shape[-2:] == (math.ceil(37 / scale), math.ceil(50 / scale))
        assert D.bicubic_degrade(x, scale).shape == x.shape
    # A constant image stays constant, and MATLAB's weights sum to one even at the borders.
    const = torch.full((1, 1, 9, 11), 0.3)
    assert torch.allclose(imresize(const, 0.5), torch.full((1, 1, 5, 6), 0.3), atol=1e-6)
    # Up-sampling by 2 puts the output pixel centres at +-1/4 input pixel: MATLAB's pixel-centre convention.
    # For a linear ramp away from the borders, bicubic is exact: out = in(u) with u = (i + 0.5) / 2 - 0.5.
    ramp = torch.arange(20.0).view(1, 1, 1, 20).expand(1, 1, 4, 20)
    up = imresize(ramp, 2.0)[0, 0, 0]
    for i in range(6, 30):
        assert up[i].item() == pytest.approx((i + 0.5) / 2 - 0.5, abs=1e-6)
    assert modcrop(x, 3).shape[-2:] == (36, 48)


def test_blur_and_mask_have_the_stated_statistics():
    x = smooth_image(40, 40)
    blurred = blur(x, gaussian_kernel(9, 1.5))
    assert blurred.shape == x.shape and blurred.mean().item() == pytest.approx(x.mean().item(), abs=1e-5)
    assert (blurred[..., 1:] - blurred[..., :-1]).abs().mean() < (x[..., 1:] - x[..., :-1]).abs().mean()
    mask = D.random_mask((4, 3, 100, 100), 0.3, torch.Generator().manual_seed(0))
    assert mask.shape == (4, 1, 100, 100) and 1 - mask.mean().item() == pytest.approx(0.3, abs=0.01)
    again = D.random_mask((4, 3, 100, 100), 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_datamodule_patches_and_seeded_evaluation(tmp_path):
    from dlfound.data.restoration import RestorationDataModule

    make_sets(tmp_path, {"train": (5, (60, 60), 1), "test": (2, (33, 47), 3)})
    dm = RestorationDataModule(
        root=str(tmp_path),
        train_dir="train",
        test_dirs=["test"],
        val_size=1,
        patch_size=20,
        stride=10,
        scales=[1.0, 0.5],
        batch_size=4,
    )
    dm.setup("fit")
    # 4 training images x (5 x 5 windows at 60x60 + 2 x 2 at 30x30); RGB test images read as gray.
    assert dm.patches.shape == (4 * (25 + 4), 1, 20, 20) and dm.patches.dtype == torch.uint8
    degraded, clean = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert degraded.shape == clean.shape == (4, 1, 20, 20)
    assert (degraded - clean).std().item() * 255 == pytest.approx(25, rel=0.2)
    first = [dm.on_after_batch_transfer(b, 0) for b in dm.test_dataloader()]
    second = [dm.on_after_batch_transfer(b, 0) for b in dm.test_dataloader()]
    assert [f[0].shape[-2:] for f in first] == [(33, 47), (33, 47)]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0][0] - first[0][1], first[1][0] - first[1][1])
    assert first[0][2]["set"] == "test" and first[0][2]["shave"] == 0

    sr = RestorationDataModule(
        root=str(tmp_path), train_dir=None, test_dirs=["test"], channels="y", degradation="bicubic", scale=3, sigma=0
    )
    sr.setup("test")
    degraded, clean, info = sr.on_after_batch_transfer(next(iter(sr.test_dataloader())), 0)
    assert degraded.shape == clean.shape == (1, 1, 33, 45) and info["shave"] == 3


# -- models --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["DnCNN", "SRCNN", "VDSR", "UNet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_models_keep_any_image_size(name, channels):
    from dlfound.models import restoration as R

    net = getattr(R, name)(channels, **({"depth": 4, "width": 8} if name in ("DnCNN", "VDSR") else {}))
    x = torch.rand(2, channels, 37, 45)
    assert net(x).shape == x.shape


def test_dncnn_predicts_the_noise():
    from dlfound.models.restoration import DnCNN

    net = DnCNN(1, depth=5, width=8).eval()
    y = torch.rand(1, 1, 16, 16)
    assert torch.allclose(net(y), y - net.noise(y))


def test_dncnn_trained_a_few_steps_lowers_the_loss(tmp_path):
    from dlfound.data.restoration import RestorationDataModule
    from dlfound.models.restoration import DnCNN

    torch.manual_seed(0)
    make_sets(tmp_path, {"train": (3, (48, 48), 1)})
    dm = RestorationDataModule(
        root=str(tmp_path),
        train_dir="train",
        test_dirs=[],
        val_size=0,
        patch_size=24,
        stride=12,
        scales=[1.0],
        batch_size=8,
        augment="none",
    )
    dm.setup("fit")
    net = DnCNN(1, depth=8, width=16)
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = dm.on_after_batch_transfer(dm.patches[:8], 0)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(net(batch[0]), batch[1])
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    # The untrained net is the identity (loss = the noise variance); a few steps remove much of the noise.
    assert losses[0] == pytest.approx((25 / 255) ** 2, rel=0.3)
    assert losses[-1] < 0.5 * losses[0], losses[::10]


# -- plug-and-play -------------------------------------------------------------------------------------------
def test_pnp_with_an_oracle_denoiser_improves_psnr():
    from dlfound.ops import plug_and_play as pnp

    clean = smooth_image(32, 32)
    kernel = gaussian_kernel(9, 1.6)
    blurred = D.gaussian_noise(blur(clean, kernel), 2.55, torch.Generator().manual_seed(0))
    before = psnr(blurred.clamp(0, 1), clean).item()
    for method in pnp.METHODS:
        out = pnp.solve(
            pnp.DeblurData(blurred, kernel),
            pnp.oracle_denoiser(clean),
            pnp.PnPConfig(iters=8, method=method),
            noise_sigma=2.55,
        )
        assert psnr(out, clean).item() > before + 10
    mask = D.random_mask(clean.shape, 0.5, torch.Generator().manual_seed(0))
    out = pnp.solve(pnp.InpaintData(clean * mask, mask), pnp.oracle_denoiser(clean), pnp.inpaint_default(8))
    assert psnr(out, clean).item() > psnr(clean * mask, clean).item() + 10
    # The schedule: denoising levels fall geometrically to the noise level, the data weight rises.
    steps = pnp.schedule(pnp.PnPConfig(iters=5, sigma_start=49), 10)
    assert steps[0][0] * 255 == pytest.approx(49) and steps[-1][0] * 255 == pytest.approx(10)
    assert all(a[1] < b[1] for a, b in zip(steps, steps[1:], strict=False))


def test_pnp_with_a_smoothing_denoiser_beats_the_blurred_input():
    """Even a crude prior (Gaussian smoothing as the 'denoiser') recovers much of a mild blur."""
    from dlfound.ops import plug_and_play as pnp

    clean = smooth_image(48, 48, seed=3)
    kernel = gaussian_kernel(9, 1.2)
    blurred = blur(clean, kernel)

    def smooth(x, sigma):
        return blur(x, gaussian_kernel(5, 0.5))

    out = pnp.solve(pnp.DeblurData(blurred, kernel), smooth, pnp.PnPConfig(iters=8, lam=0.05), noise_sigma=0)
    assert psnr(out, clean).item() > psnr(blurred, clean).item() + 2


# -- configs and the command line ----------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose_and_build(experiment, tmp_path):
    from omegaconf import OmegaConf

    from dlfound.runs.build import build, compose

    cfg = compose([f"experiment={experiment}", f"paths.data_dir={tmp_path}", "hydra.runtime.output_dir=."])
    plain = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "model", "task", "optim", "sched")}
    assert plain["data"]["root"] == f"{tmp_path}/restoration"
    datamodule, task = build(plain)
    assert task.monitor == "val/psnr" and task.monitor_mode == "max"
    x = torch.rand(1, datamodule.in_channels, 24, 24)
    assert task.net(x).shape == x.shape


def test_train_restore_and_pnp_from_the_command_line(workdir, dlfound_in_process):
    """A tiny DnCNN run of the real CLI, then `dlfound restore` on an image of another size, plain and by
    plug-and-play deblurring, and a clear error for a missing input."""
    root = workdir / "data" / "restoration"
    make_sets(root, {"Train400": (4, (48, 48), 1), "Set12": (1, (30, 26), 1), "BSD68": (1, (26, 30), 1)})
    dlfound_in_process(
        [
            "train",
            "experiment=dncnn_sigma25",
            "model.depth=4",
            "model.width=8",
            "data.batch_size=8",
            "data.val_size=1",
            "data.scales=[1.0]",
            "trainer.max_epochs=1",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
        ],
        workdir,
        check=True,
    )
    run = run_folders(workdir / "outputs")[-1]
    results = read_results(run)
    for key in ("test/psnr", "test/ssim", "test/psnr_input", "test/Set12/psnr", "test/BSD68/psnr"):
        assert key in results["metrics"]
    assert results["metrics"]["test/psnr_input"] == pytest.approx(20.2, abs=1.5)
    assert (run / "test_images.csv").read_text().count("\n") == 3
    # degraded | restored | clean side by side in TensorBoard, as its own reader sees them.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    image = events.Images("test/Set12/000")[-1]
    assert (image.height, image.width) == (30, 3 * 26 + 4)
    ckpt = next((run / "checkpoints").glob("last*.ckpt"))

    write_png(workdir / "photo.png", smooth_image(23, 31, 3))
    proc = dlfound_in_process(
        ["restore", f"ckpt_path={ckpt}", "input=photo.png", "sigma=25", "output=out.png"], workdir, check=True
    )
    assert "PSNR" in proc.stdout
    with Image.open(workdir / "out.png") as out:
        assert out.size == (31, 23) and out.mode == "RGB"
    dlfound_in_process(
        [
            "restore",
            f"ckpt_path={ckpt}",
            "input=photo.png",
            "task=deblur",
            "pnp_iters=2",
            "output=deblurred.png",
            "degraded_output=blurred.png",
        ],
        workdir,
        check=True,
    )
    with Image.open(workdir / "deblurred.png") as out:
        assert out.size == (31, 23)
    missing = dlfound_in_process(["restore", f"ckpt_path={ckpt}", "input=nothere.png", "output=x.png"], workdir)
    assert missing.returncode != 0 and "nothere.png" in missing.stderr and "Traceback" not in missing.stderr


def test_every_restoration_model_trains_fast_dev_run(workdir, dlfound_in_process):
    """`debug=fast` through every restoration experiment (one process, a Hydra multirun)."""
    root = workdir / "data" / "restoration"
    make_sets(
        root,
        {
            "Train400": (3, (64, 64), 1),
            "Set12": (1, (30, 26), 1),
            "BSD68": (1, (26, 30), 1),
            "Set5": (1, (36, 30), 3),
            "Set14": (1, (30, 36), 3),
        },
    )
    dlfound_in_process(
        [
            "train",
            "-m",
            "experiment=dncnn_sigma25,srcnn_x3,vdsr_x2,unet_sigma25",
            "debug=fast",
            "data.batch_size=4",
            "data.val_size=1",
            "callbacks.progress_bar=null",
        ],
        workdir,
        check=True,
    )
    assert len(run_folders(workdir / "outputs")) == 4
    assert not (workdir / "test_images.csv").exists()  # fast_dev_run has no run folder to write it to
    for folder in run_folders(workdir / "outputs"):
        assert read_results(folder)["metrics"]["test/psnr"] > 0


@pytest.mark.shared_data
def test_bicubic_baseline_reproduces_the_published_set5_row():
    import importlib.util

    root = SHARED_DATA / "restoration"
    if not (root / "Set5").is_dir():
        pytest.skip(f"no shared restoration data at {root}")
    spec = importlib.util.spec_from_file_location("bicubic", REPO / "scripts" / "restoration_bicubic_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.bicubic_table(root, ["Set5"])
    for scale, published in {2: 33.66, 3: 30.39, 4: 28.42}.items():
        assert table[("Set5", scale)][0] == pytest.approx(published, abs=0.1)

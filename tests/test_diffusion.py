"""Diffusion and score-based models: the schedules' closed forms, the samplers on distributions whose exact noise
or score is known, the variational bound's pieces, the U-Net's paper size, and Langevin dynamics on Song &
Ermon's mixture (annealed recovers the weights, plain does not), with the exact score and with a learned one."""

import math

import pytest
import torch

from dlfound.errors import ConfigError
from dlfound.models import ddpm_unet, score_mlp
from dlfound.ops.likelihood import discretized_gaussian_nll, normal_kl, variational_bound
from dlfound.ops.noise_schedules import NoiseSchedule, cosine_betas, geometric_sigmas, linear_betas, make_betas
from dlfound.ops.samplers import annealed_langevin, ddim_sample, spaced_steps


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- schedules -------------------------------------------------------------------------------------------------
def test_linear_schedule_is_the_papers_and_cosine_follows_its_formula():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    abar = torch.cumprod(1 - cosine_betas(1000), 0)
    t = torch.tensor([1, 250, 500, 750], dtype=torch.float64)
    f = lambda u: torch.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert torch.allclose(abar[t.long() - 1], f(t) / f(torch.zeros(1, dtype=torch.float64)), rtol=1e-6)
    with pytest.raises(ConfigError, match="linear, cosine"):
        make_betas("quadratic", 10)
    with pytest.raises(ConfigError, match="schedule=cosine"):
        make_betas("linear", 10)


def test_posterior_matches_bayes_rule():
    """q(x_{t-1} | x_t, x_0) from the product of q(x_t | x_{t-1}) and q(x_{t-1} | x_0), computed directly."""
    betas = linear_betas(50)
    s = NoiseSchedule(betas)
    alphas, abar = 1 - betas, torch.cumprod(1 - betas, 0)
    x0, x_t = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    t = torch.arange(1, 50)  # t >= 1: abar_{t-1} < 1
    precision = alphas[t] / betas[t] + 1 / (1 - abar[t - 1])
    mean = (alphas[t].sqrt() / betas[t])[:, None] * x_t[t] + (abar[t - 1].sqrt() / (1 - abar[t - 1]))[:, None] * x0[t]
    mean = mean / precision[:, None]
    assert torch.allclose(s.posterior_mean(x0[t].float(), x_t[t].float(), t).double(), mean, atol=1e-4)
    assert torch.allclose(s.posterior_variance[t].double(), 1 / precision, rtol=1e-4)


def test_q_sample_and_predict_x0_invert_each_other():
    s = NoiseSchedule(linear_betas(100))
    x0, noise, t = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4), torch.randint(0, 100, (8,))
    x_t = s.q_sample(x0, t, noise)
    assert torch.allclose(s.predict_x0(x_t, t, noise), x0, atol=1e-3)
    assert torch.allclose(s.predict_eps(x_t, t, x0), noise, atol=1e-3)


def test_spaced_steps_run_from_the_last_step_to_the_first():
    assert spaced_steps(1000, 1000).tolist() == list(range(999, -1, -1))
    steps = spaced_steps(1000, 50)
    assert len(steps) == 50 and steps[0] == 999 and steps[-1] == 0 and (steps.diff() < 0).all()


# -- samplers on Gaussian data, with the exact noise predictor -------------------------------------------------
def exact_gaussian_eps(schedule: NoiseSchedule, mean: float, std: float):
    """For data N(mean, std^2): x_t ~ N(sqrt(abar) mean, abar std^2 + 1 - abar), so E[eps | x_t] is linear in x_t."""

    def eps(x_t, t):
        abar = schedule.alphas_bar[t].view(-1, 1)
        return (1 - abar).sqrt() * (x_t - abar.sqrt() * mean) / (abar * std**2 + 1 - abar)

    return eps


def gaussian_samples(steps: int, eta: float) -> torch.Tensor:
    torch.manual_seed(0)
    schedule = NoiseSchedule(linear_betas(1000))
    return ddim_sample(exact_gaussian_eps(schedule, 1.5, 0.5), schedule, torch.randn(20000, 1), steps, eta)


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_ddpm_and_ddim_over_all_steps_sample_the_data_distribution_given_the_exact_noise(eta):
    x = gaussian_samples(1000, eta)
    assert x.mean().item() == pytest.approx(1.5, abs=0.02)
    assert x.std().item() == pytest.approx(0.5, abs=0.015)


def test_with_few_steps_ddim_keeps_closer_to_the_data_than_ancestral_sampling():
    """Song et al. 2021's point, in miniature: at 50 steps both shrink the spread (std 0.5), DDIM (eta 0) less."""
    ddim, ddpm = gaussian_samples(50, 0.0).std().item(), gaussian_samples(50, 1.0).std().item()
    assert 0.45 < ddim < 0.5 and ddpm < ddim


def test_ddim_with_eta_one_steps_to_the_posterior_mean_plus_its_variance():
    """One DDPM step (all T steps, eta 1) is mu~_t(x_t, x0^) + sqrt(b~_t) z (Ho et al., Alg. 2)."""
    schedule = NoiseSchedule(cosine_betas(10))
    eps = lambda x, t: 0.3 * x  # noqa: E731  any predictor
    x_t = torch.randn(4, 2)
    torch.manual_seed(1)
    seen = []
    ddim_sample(eps, schedule, x_t.clone(), 10, eta=1.0, on_step=lambda i, n, x: seen.append(x) if i == 0 else None)
    torch.manual_seed(1)
    t = torch.full((4,), 9)
    x0 = schedule.predict_x0(x_t, t, eps(x_t, t))
    expected = schedule.posterior_mean(x0, x_t, t) + schedule.posterior_variance[9].sqrt() * torch.randn_like(x_t)
    assert torch.allclose(seen[0], expected, atol=1e-5)


# -- the bound --------------------------------------------------------------------------------------------------
def test_the_discretised_decoder_is_a_distribution_over_256_levels():
    levels = torch.linspace(-1, 1, 256)
    for mean, std in ((0.1, 0.05), (-0.9, 0.01), (0.0, 2.0)):
        nll = discretized_gaussian_nll(levels, torch.full_like(levels, mean), torch.tensor(std))
        assert torch.exp(-nll.double()).sum().item() == pytest.approx(1.0, abs=1e-4)


def test_normal_kl_closed_form():
    assert normal_kl(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1.0)).item() == 0
    kl = normal_kl(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.0), torch.tensor(1.0)).item()
    assert kl == pytest.approx(0.5 * (math.log(1 / 2) + 2 + 1 - 1))


def test_the_bound_of_a_perfect_denoiser_is_its_prior_and_decoder_terms():
    """For data that is one image x*, the noise is known exactly: every middle term vanishes and the bound is
    KL(q(x_T | x*) || N(0, I)) plus the decoder's -log P(x*) under N(x*, b_1)."""
    schedule = NoiseSchedule(linear_betas(100))
    x_star = torch.randint(0, 256, (1, 1, 4, 4)).float() / 255 * 2 - 1
    oracle = lambda x_t, t: schedule.predict_eps(x_t, t, x_star.expand_as(x_t))  # noqa: E731
    nats = variational_bound(oracle, schedule, x_star, samples=4)
    abar_T = schedule.alphas_bar[-1]
    prior = normal_kl(abar_T.sqrt() * x_star, 1 - abar_T, torch.zeros(()), torch.ones(())).sum()
    decoder = discretized_gaussian_nll(x_star, x_star, schedule.betas[0].sqrt()).sum()
    assert nats.item() == pytest.approx((prior + decoder).item(), rel=1e-3)


# -- networks ---------------------------------------------------------------------------------------------------
def test_the_cifar_unet_has_the_papers_35_7_million_parameters():
    assert sum(p.numel() for p in ddpm_unet(3, 32, base_channels=128).parameters()) == 35_746_307


def test_unets_start_at_zero_and_take_the_null_class():
    net = ddpm_unet(1, 28, num_classes=10, conditional=True, base_channels=16, num_res_blocks=1).eval()
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    assert net(x, t, torch.tensor([1, 2, 3])).abs().max() == 0  # the output conv starts at zero (Ho et al.)
    with torch.no_grad():  # as after some training: the zero-initialised convs no longer hide the class
        for param in net.parameters():
            param.add_(0.05 * torch.randn_like(param))
    assert not torch.equal(net(x, t, torch.tensor([1, 2, 3])), net(x, t))  # y None: the null class, another output
    assert torch.equal(net(x, t), net(x, t, torch.full((3,), 10)))
    with pytest.raises(ValueError, match="score_mlp"):
        ddpm_unet(2, None)
    with pytest.raises(ValueError, match="halved"):
        ddpm_unet(1, 28, channel_mults=(1, 2, 2, 2))


# -- Langevin dynamics on Song & Ermon's mixture ----------------------------------------------------------------
CENTERS, WEIGHTS = torch.tensor([[5.0, 5.0], [-5.0, -5.0]]), torch.tensor([0.8, 0.2])


def mixture_score(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """grad log of 0.8 N((5,5), (1 + sigma^2) I) + 0.2 N((-5,-5), (1 + sigma^2) I): the exact noisy score."""
    var = 1 + sigma**2
    logits = WEIGHTS.log() - ((x[:, None] - CENTERS) ** 2).sum(-1) / (2 * var)
    r = logits.softmax(1)
    return (r[:, :, None] * (CENTERS - x[:, None])).sum(1) / var


def heavy_share(x: torch.Tensor) -> float:
    return (torch.cdist(x, CENTERS).argmin(1) == 0).float().mean().item()


def test_annealed_langevin_recovers_the_weights_and_plain_langevin_does_not_with_the_exact_score():
    torch.manual_seed(0)
    sigmas = geometric_sigmas(20, 1, 10)
    start = (torch.rand(2000, 2) * 2 - 1) * 8
    annealed = annealed_langevin(lambda x, i: mixture_score(x, sigmas[i].item()), start, sigmas, 0.1, 100)
    plain = annealed_langevin(lambda x, i: mixture_score(x, 0.0), start, sigmas[-1:], 0.1, 1000)
    assert heavy_share(annealed) == pytest.approx(0.8, abs=0.05)
    assert abs(heavy_share(plain) - 0.8) > 0.15  # stuck with the start's split, about one half


def mixture_training_points() -> torch.Tensor:
    """20,000 training points of the two-mode mixture, as the data module loads them (unnormalised)."""
    from dlfound.data.mixtures import GaussianMixtureDataModule

    data = GaussianMixtureDataModule(
        kind="custom",
        modes=2,
        centers=CENTERS.tolist(),
        weights=WEIGHTS.tolist(),
        std=1.0,
        n_train=20000,
        num_classes=2,
        in_channels=2,
        normalize=False,
    )
    return data.load(train=True)[0]


def test_a_learned_score_recovers_the_weights_with_annealing_only():
    """Train the noise-conditional score MLP by the task's denoising score matching on the mixture (1,500 steps,
    about 10 s; seeds 0, 1, 2 give 0.784, 0.796, 0.788 annealed), then sample it both ways."""
    from dlfound.tasks.score import ScoreTask

    torch.manual_seed(0)
    x = mixture_training_points()
    task = ScoreTask(score_mlp(2, hidden=(128, 128, 128)), {"_target_": "torch.optim.Adam"}, eval_samples=0)
    opt = torch.optim.Adam(task.net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1500)
    losses = []
    for _ in range(1500):
        loss = task.score_matching_loss(x[torch.randint(0, len(x), (256,))])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) < 0.8 * sum(losses[:50])
    task.eval()
    torch.manual_seed(1)
    assert heavy_share(task.sample(1000)) == pytest.approx(0.8, abs=0.05)
    task.set_sampler("langevin")
    assert abs(heavy_share(task.sample(1000)) - 0.8) > 0.15


def test_sliced_score_matching_learns_the_score_without_knowing_the_noise():
    """task.objective=ssm (Song, Garg, Shi & Ermon 2019) on the mixture: the learned score points where the exact
    one does (cosine > 0.9 at the middle noise levels)."""
    from dlfound.tasks.score import ScoreTask

    torch.manual_seed(0)
    x = mixture_training_points()
    task = ScoreTask(score_mlp(2, hidden=(64, 64)), {"_target_": "torch.optim.Adam"}, objective="ssm", eval_samples=0)
    opt = torch.optim.Adam(task.net.parameters(), lr=3e-3)
    for _ in range(400):
        loss = task.score_matching_loss(x[torch.randint(0, len(x), (256,))])
        opt.zero_grad()
        loss.backward()
        opt.step()
    points = (torch.rand(1000, 2) * 2 - 1) * 8
    with torch.no_grad():
        for level in (3, 5):
            learned = task.score(points, torch.full((1000,), level))
            exact = mixture_score(points, task.sigmas[level].item())
            assert torch.cosine_similarity(learned, exact, dim=1).mean() > 0.9

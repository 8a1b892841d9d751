"""The linear quadratic regulator: a JAX-native environment and its exact infinite-horizon analysis.

Layer 3 (running). Sources: seeds 000 and 003 cite Fazel, Ge, Kakade and Mesbahi (2018), "Global
Convergence of Policy Gradient Methods for the Linear Quadratic Regulator", for the claim that
(natural) policy gradient on LQR converges to the global optimum (seed 003, "Globally Convergent in
LQR/LQG Case"). The notation below is theirs.

Problem. `LQRProblem(A, B, Q, R, Sigma0)`: state x ∈ R^n, input u ∈ R^m,

    x_0 ~ N(0, Σ0),   x_{t+1} = A x_t + B u_t,   cost c_t = x_tᵀ Q x_t + u_tᵀ R u_t  (reward −c_t).

There is no discounting (γ = 1): the env reports −c_t, and C(K) below is an undiscounted sum.

Linear policies u = −K x (K: [m, n]); the infinite-horizon cost is

    C(K) = E_{x0}[Σ_{t≥0} x_tᵀ (Q + KᵀRK) x_t] = tr(P_K Σ0),
    P_K  = Q + KᵀRK + (A − BK)ᵀ P_K (A − BK)           (discrete Lyapunov equation),
    Σ_K  = Σ_{t≥0} E[x_t x_tᵀ] = Σ0 + (A − BK) Σ_K (A − BK)ᵀ,
    ∇C(K) = 2 E_K Σ_K,   E_K = (R + BᵀP_K B) K − BᵀP_K A      (Fazel et al., Lemma 1),
    natural gradient  ∇C(K) Σ_K⁻¹ = 2 E_K,
    K*   = (R + BᵀP B)⁻¹ BᵀP A,  P = Q + AᵀPA − AᵀPB (R + BᵀPB)⁻¹ BᵀPA   (the DARE; E_{K*} = 0).

C(K) is finite iff K stabilises the closed loop, ρ(A − BK) < 1; every infinite-horizon function
raises a ValueError otherwise.

Precision. The generators return float64 NumPy arrays and the exact analysis runs in NumPy float64
(no global x64 flag, no SciPy at runtime): Lyapunov equations are solved exactly by a Kronecker
linear system (fine for the small n this module is meant for), the DARE by iterating the Riccati
recursion to convergence. The environment casts the problem to float32, like every `JaxEnv`.

    LQRProblem                       the problem pytree (flax.struct)
    default_lqr()                    a fixed 3-state, 2-input, open-loop stable problem
    random_lqr(seed, ...)            a seeded random problem with a chosen open-loop spectral radius
    lqr_env(problem, horizon, ...)   the problem as a `JaxEnv` (reward −c_t, truncated at `horizon`)
    spectral_radius, closed_loop     ρ(M) and A − BK
    solve_discrete_lyapunov(L, M)    X = M + L X Lᵀ
    lqr_value_matrix, lqr_state_covariance, lqr_cost, lqr_gradient, lqr_natural_gradient
    lqr_optimal_gain(problem)        (K*, P*) from the Riccati recursion
    lqr_finite_horizon_cost(...)     exact expected cost of `lqr_env` over a finite horizon, with noise
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pgax.envs.core import JaxEnv, Transition
from pgax.spaces import Box

__all__ = [
    "LQRProblem",
    "LQRState",
    "default_lqr",
    "random_lqr",
    "lqr_env",
    "spectral_radius",
    "closed_loop",
    "solve_discrete_lyapunov",
    "lqr_value_matrix",
    "lqr_state_covariance",
    "lqr_cost",
    "lqr_gradient",
    "lqr_natural_gradient",
    "lqr_optimal_gain",
    "lqr_finite_horizon_cost",
]


@struct.dataclass
class LQRProblem:
    """A discrete-time LQR problem as a pytree.

    Attributes:
        A: [n, n] state transition.
        B: [n, m] input matrix.
        Q: [n, n] state cost, symmetric positive (semi)definite.
        R: [m, m] input cost, symmetric positive definite.
        Sigma0: [n, n] covariance of x_0 ~ N(0, Σ0), symmetric positive (semi)definite.
    """

    A: jax.Array
    B: jax.Array
    Q: jax.Array
    R: jax.Array
    Sigma0: jax.Array

    @property
    def state_dim(self) -> int:
        return int(np.shape(self.A)[0])

    @property
    def action_dim(self) -> int:
        return int(np.shape(self.B)[1])


@struct.dataclass
class LQRState:
    """x: float32 [n], the current state x_t.  time: int32 scalar, steps taken in this episode."""

    x: jax.Array
    time: jax.Array


def _check_shapes(problem: LQRProblem) -> tuple[int, int]:
    shapes = {name: tuple(np.shape(getattr(problem, name))) for name in ("A", "B", "Q", "R", "Sigma0")}
    if len(shapes["A"]) != 2 or shapes["A"][0] != shapes["A"][1]:
        raise ValueError(f"LQRProblem: A must be square [n, n], got shape {shapes['A']}")
    n = shapes["A"][0]
    if len(shapes["B"]) != 2 or shapes["B"][0] != n:
        raise ValueError(f"LQRProblem: B must be [n={n}, m], got shape {shapes['B']}")
    m = shapes["B"][1]
    for name, want in (("Q", (n, n)), ("R", (m, m)), ("Sigma0", (n, n))):
        if shapes[name] != want:
            raise ValueError(f"LQRProblem: {name} must be {list(want)}, got shape {shapes[name]}")
    return n, m


# ------------------------------------------------------------------------------------ generators


def default_lqr() -> LQRProblem:
    """A fixed small problem: n = 3 states, m = 2 inputs, Q = I, R = I, Σ0 = I (float64 NumPy).

        A = [[ 1.0, 0.2, 0.0],      B = 0.5 · [[0, 0],
             [-0.1, 0.9, 0.2],                  [1, 0],
             [ 0.0, -0.1, 0.8]]                 [0, 1]]

    A is open-loop stable (ρ(A) ≈ 0.917) but slow and non-normal, and the first state is actuated
    only through the second, so K = 0 is a stabilising start (C(0) ≈ 31.06) far from the optimum
    (C(K*) ≈ 12.59).
    """
    A = np.array([[1.0, 0.2, 0.0], [-0.1, 0.9, 0.2], [0.0, -0.1, 0.8]])
    B = 0.5 * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    return LQRProblem(A=A, B=B, Q=np.eye(3), R=np.eye(2), Sigma0=np.eye(3))


def random_lqr(seed: int, state_dim: int = 3, action_dim: int = 2, open_loop_radius: float = 0.9) -> LQRProblem:
    """A seeded random problem (float64 NumPy, deterministic across platforms).

    A = ρ · G / ρ(G) with G_ij ~ N(0, 1), so ρ(A) = `open_loop_radius` (< 1 makes K = 0 stabilising;
    > 1 gives an open-loop unstable plant); B_ij ~ N(0, 1/n); Q = MᵀM/n + 0.1 I, R = NᵀN/m + 0.1 I,
    Σ0 = WWᵀ/n + 0.1 I with M, N, W standard normal (all positive definite).
    """
    if state_dim < 1 or action_dim < 1:
        raise ValueError(f"random_lqr: state_dim and action_dim must be ≥ 1, got {state_dim}, {action_dim}")
    if not open_loop_radius > 0:
        raise ValueError(f"random_lqr: open_loop_radius must be positive, got {open_loop_radius}")
    n, m = int(state_dim), int(action_dim)
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n))
    A = open_loop_radius * G / spectral_radius(G)
    B = rng.standard_normal((n, m)) / np.sqrt(n)
    M, N, W = rng.standard_normal((n, n)), rng.standard_normal((m, m)), rng.standard_normal((n, n))
    return LQRProblem(A=A, B=B, Q=M.T @ M / n + 0.1 * np.eye(n), R=N.T @ N / m + 0.1 * np.eye(m),
                      Sigma0=W @ W.T / n + 0.1 * np.eye(n))


# ----------------------------------------------------------------------------------- environment


def _psd_sqrt(S: jax.Array) -> jax.Array:
    """A matrix square root S^{1/2} (S = S^{1/2} S^{1/2}ᵀ) of a symmetric PSD matrix, via eigh."""
    w, V = jnp.linalg.eigh(0.5 * (S + S.T))
    return V * jnp.sqrt(jnp.clip(w, 0.0, None))


def lqr_env(problem: LQRProblem, horizon: int, noise_std: float = 0.0) -> JaxEnv:
    """The LQR problem as a `JaxEnv` (float32):

        x_0 ~ N(0, Σ0),   x_{t+1} = A x_t + B u_t + noise_std · w_t,   w_t ~ N(0, I_n),
        r_t = −(x_tᵀ Q x_t + u_tᵀ R u_t),

    truncated (never terminated) after `horizon` steps, then auto-reset from N(0, Σ0). With the
    default `noise_std = 0` the dynamics are the noise-free ones of Fazel et al., for which the
    infinite-horizon analysis (`lqr_cost`, ...) holds; the policy's own exploration noise
    (u = −Kx + σ ξ) is the agent's business. `lqr_finite_horizon_cost` gives the exact expected
    cost of this env for a linear Gaussian policy, including both noises. No discounting (γ = 1).

    Args:
        problem: an `LQRProblem` (concrete or traced arrays).
        horizon: episode length (steps until truncation), ≥ 1.
        noise_std: standard deviation of the additive process noise w_t.

    Returns:
        A `JaxEnv`: obs float32 [n] = x_t; state `LQRState`; action Box (m,), unbounded;
        observation Box (n,), unbounded; `max_episode_steps = horizon`.
    """
    n, m = _check_shapes(problem)
    if int(horizon) < 1:
        raise ValueError(f"lqr_env: horizon must be ≥ 1, got {horizon}")
    if not noise_std >= 0:
        raise ValueError(f"lqr_env: noise_std must be ≥ 0, got {noise_std}")
    horizon = int(horizon)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    A, B, Q, R = f32(problem.A), f32(problem.B), f32(problem.Q), f32(problem.R)
    start_scale = _psd_sqrt(f32(problem.Sigma0))
    sigma_w = jnp.float32(noise_std)

    def start(key):
        return start_scale @ jax.random.normal(key, (n,), jnp.float32)

    def reset(key):
        x0 = start(key)
        return x0, LQRState(x0, jnp.zeros((), jnp.int32))

    def step(key, state: LQRState, action) -> Transition:
        noise_key, reset_key = jax.random.split(key)
        x = state.x
        u = jnp.reshape(jnp.asarray(action, jnp.float32), (m,))
        reward = -(x @ Q @ x + u @ R @ u)
        x_next = A @ x + B @ u + sigma_w * jax.random.normal(noise_key, (n,), jnp.float32)
        time = state.time + 1
        truncated = time >= horizon
        x_following = jnp.where(truncated, start(reset_key), x_next)
        return Transition(obs=x_following, state=LQRState(x_following, jnp.where(truncated, 0, time)),
                          reward=reward, terminated=jnp.asarray(False), truncated=truncated,
                          final_obs=x_next, info={})

    inf = float("inf")
    return JaxEnv(f"LQR-n{n}m{m}-T{horizon}", reset, step, Box.from_bounds((n,), -inf, inf),
                  Box.from_bounds((m,), -inf, inf), horizon, model=problem)


# ------------------------------------------------------------------------- exact analysis (float64)


def _f64(problem: LQRProblem):
    _check_shapes(problem)
    return tuple(np.asarray(getattr(problem, name), np.float64) for name in ("A", "B", "Q", "R", "Sigma0"))


def _gain(problem: LQRProblem, K) -> np.ndarray:
    n, m = _check_shapes(problem)
    K = np.asarray(K, np.float64)
    if K.shape != (m, n):
        raise ValueError(f"LQR gain K must be [m={m}, n={n}] (u = −K x), got shape {K.shape}")
    return K


def spectral_radius(M) -> float:
    """ρ(M) = max |λ_i(M)| of a square matrix (float64)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(M, np.float64)))))


def closed_loop(problem: LQRProblem, K) -> np.ndarray:
    """The closed-loop matrix A − BK [n, n] of the policy u = −Kx (float64)."""
    A, B, *_ = _f64(problem)
    return A - B @ _gain(problem, K)


def _stabilising_closed_loop(problem: LQRProblem, K) -> np.ndarray:
    L = closed_loop(problem, K)
    rho = spectral_radius(L)
    if not rho < 1.0:
        raise ValueError(f"K does not stabilise the system: spectral radius of A − BK is {rho:.6g} ≥ 1, "
                         "so the infinite-horizon cost C(K) is infinite; start from a stabilising K "
                         "(e.g. K = 0 when A is stable) or take smaller steps")
    return L


def solve_discrete_lyapunov(L, M) -> np.ndarray:
    """The solution X [n, n] of X = M + L X Lᵀ, i.e. X = Σ_{t≥0} L^t M (Lᵀ)^t (float64).

    Solved exactly as the linear system (I − L ⊗ L) vec(X) = vec(M), which is nonsingular iff no two
    eigenvalues of L multiply to 1 (in particular when ρ(L) < 1, the case the series converges).
    Costs O(n⁶): meant for the small problems of this module. Same convention as
    `scipy.linalg.solve_discrete_lyapunov(L, M)`.
    """
    L = np.asarray(L, np.float64)
    M = np.asarray(M, np.float64)
    n = L.shape[0]
    if L.shape != (n, n) or M.shape != (n, n):
        raise ValueError(f"solve_discrete_lyapunov: L and M must both be [n, n], got {L.shape} and {M.shape}")
    # Row-major vec: vec(L X Lᵀ) = (L ⊗ L) vec(X).
    X = np.linalg.solve(np.eye(n * n) - np.kron(L, L), M.reshape(-1)).reshape(n, n)
    return 0.5 * (X + X.T) if np.allclose(M, M.T) else X


def lqr_value_matrix(problem: LQRProblem, K) -> np.ndarray:
    """P_K [n, n]: the cost-to-go matrix of u = −Kx, x_0ᵀ P_K x_0 = Σ_t x_tᵀ(Q + KᵀRK)x_t.

    Solves P = Q + KᵀRK + (A − BK)ᵀ P (A − BK). Raises ValueError unless ρ(A − BK) < 1.
    """
    _, _, Q, R, _ = _f64(problem)
    K = _gain(problem, K)
    L = _stabilising_closed_loop(problem, K)
    return solve_discrete_lyapunov(L.T, Q + K.T @ R @ K)


def lqr_state_covariance(problem: LQRProblem, K) -> np.ndarray:
    """Σ_K = Σ_{t≥0} E[x_t x_tᵀ] [n, n], solving Σ = Σ0 + (A − BK) Σ (A − BK)ᵀ.

    Raises ValueError unless ρ(A − BK) < 1.
    """
    *_, Sigma0 = _f64(problem)
    L = _stabilising_closed_loop(problem, K)
    return solve_discrete_lyapunov(L, Sigma0)


def lqr_cost(problem: LQRProblem, K) -> float:
    """C(K) = E_{x0 ~ N(0, Σ0)}[Σ_{t≥0} x_tᵀ(Q + KᵀRK)x_t] = tr(P_K Σ0) (Fazel et al.).

    Equivalently tr((Q + KᵀRK) Σ_K). Raises ValueError unless ρ(A − BK) < 1.
    """
    *_, Sigma0 = _f64(problem)
    return float(np.trace(lqr_value_matrix(problem, K) @ Sigma0))


def _error_matrix(problem: LQRProblem, K) -> np.ndarray:
    """E_K = (R + BᵀP_K B) K − BᵀP_K A [m, n]."""
    A, B, _, R, _ = _f64(problem)
    K = _gain(problem, K)
    P = lqr_value_matrix(problem, K)
    return (R + B.T @ P @ B) @ K - B.T @ P @ A


def lqr_gradient(problem: LQRProblem, K) -> np.ndarray:
    """The exact policy gradient ∇C(K) = 2 E_K Σ_K [m, n], E_K = (R + BᵀP_K B)K − BᵀP_K A.

    (Fazel et al., Lemma 1.) −∇C(K) is the descent direction for the cost (C is minimised; the
    env's return is −C). Raises ValueError unless ρ(A − BK) < 1.
    """
    return 2.0 * _error_matrix(problem, K) @ lqr_state_covariance(problem, K)


def lqr_natural_gradient(problem: LQRProblem, K) -> np.ndarray:
    """The natural gradient direction ∇C(K) Σ_K⁻¹ = 2 E_K [m, n] (Fazel et al.'s natural policy gradient).

    Computed as 2 E_K directly (no inverse of Σ_K). Fazel et al. show that the update
    K ← K − η ∇C(K) Σ_K⁻¹ converges globally to K* for a small enough constant η. Their cost-difference
    identity, C(K') − C(K) = −2 tr(Σ_{K'} ΔᵀE_K) + tr(Σ_{K'} Δᵀ(R + BᵀP_K B)Δ) with Δ = K − K',
    gives for this step C(K') − C(K) ≤ −4η (1 − η‖R + BᵀP_K B‖) tr(Σ_{K'} E_KᵀE_K): every step
    with η < 1 / ‖R + BᵀP_K B‖ decreases the cost, and η = 1 / (2‖R + BᵀP_K B‖) decreases it most
    by this bound. Raises unless stabilising.
    """
    return 2.0 * _error_matrix(problem, K)


def lqr_optimal_gain(problem: LQRProblem, tol: float = 1e-13,
                     max_iter: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """The optimal gain K* [m, n] and cost matrix P* [n, n], so that C(K*) = tr(P* Σ0) is the minimum.

    Iterates the Riccati recursion from P_0 = Q,

        P_{k+1} = Q + AᵀP_kA − AᵀP_kB (R + BᵀP_kB)⁻¹ BᵀP_kA,

    until ‖P_{k+1} − P_k‖_max ≤ tol · max(1, ‖P_k‖_max); then K* = (R + BᵀP*B)⁻¹ BᵀP*A. The
    recursion converges to the stabilising solution of the DARE when (A, B) is stabilisable and
    (A, Q^{1/2}) detectable (e.g. Q ≻ 0). Raises ValueError if it does not converge within
    `max_iter` iterations or the resulting K* does not stabilise A − BK*.
    """
    A, B, Q, R, _ = _f64(problem)
    P = Q.copy()
    for _ in range(int(max_iter)):
        BtPA = B.T @ P @ A
        P_next = Q + A.T @ P @ A - BtPA.T @ np.linalg.solve(R + B.T @ P @ B, BtPA)
        P_next = 0.5 * (P_next + P_next.T)
        if not np.all(np.isfinite(P_next)):
            break
        converged = np.max(np.abs(P_next - P)) <= tol * max(1.0, float(np.max(np.abs(P))))
        P = P_next
        if converged:
            K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
            rho = spectral_radius(A - B @ K)
            if not rho < 1.0:
                raise ValueError(f"lqr_optimal_gain: the Riccati fixed point gives ρ(A − BK*) = {rho:.6g} ≥ 1; "
                                 "the problem is not stabilisable/detectable (make Q positive definite)")
            return K, P
    raise ValueError(f"lqr_optimal_gain: the Riccati recursion did not converge in {max_iter} iterations; "
                     "check that (A, B) is stabilisable and Q is positive definite")


def lqr_finite_horizon_cost(problem: LQRProblem, K, horizon: int, noise_std: float = 0.0,
                            action_noise_std: float = 0.0) -> float:
    """Exact E[Σ_{t<horizon} (x_tᵀQx_t + u_tᵀRu_t)] for `lqr_env(problem, horizon, noise_std)` under
    the linear Gaussian policy u_t = −K x_t + action_noise_std · ξ_t, ξ_t ~ N(0, I_m) (−return).

    With L = A − BK the state stays zero-mean with covariance S_t:

        S_0 = Σ0,   S_{t+1} = L S_t Lᵀ + σ_u² B Bᵀ + σ_w² I,
        E[c_t] = tr((Q + KᵀRK) S_t) + σ_u² tr(R).

    Needs no stability (any K, any horizon ≥ 1). With σ_w = σ_u = 0 it increases to C(K) as
    horizon → ∞ when K is stabilising.
    """
    A, B, Q, R, Sigma0 = _f64(problem)
    K = _gain(problem, K)
    if int(horizon) < 1:
        raise ValueError(f"lqr_finite_horizon_cost: horizon must be ≥ 1, got {horizon}")
    L = A - B @ K
    M = Q + K.T @ R @ K
    drive = action_noise_std ** 2 * (B @ B.T) + noise_std ** 2 * np.eye(A.shape[0])
    S, total = Sigma0, 0.0
    for _ in range(int(horizon)):
        total += float(np.trace(M @ S)) + action_noise_std ** 2 * float(np.trace(R))
        S = L @ S @ L.T + drive
    return total

"""Mutation checks: does each test catch the bug it is for?

Each mutant below is a bug that policy-gradient code has shipped (a line search without its KL
check, GAE without λ, a PPO clip with max for min, ...), written as an exact text replacement in one
file. For each mutant the script

    1. copies the repository (tracked and untracked, not ignored, files) to a scratch directory,
    2. plants the mutant there (its old text must occur exactly once, else the mutant is *stale*),
    3. runs the mutant's test selection against the scratch copy, checking through a pytest plugin
       that every imported `pgax` module comes from the scratch copy (pgax is installed editable
       into the venv, so a careless run would test the unmutated working tree),

and prints a table: killed (a test failed), survived (all passed), or an error (stale pattern,
baseline failure, import from the wrong tree, timeout, collection error). Before the mutants, every
selection runs once against an unmutated copy: a selection that already fails kills nothing.

Exit status 0 only when every mutant is killed.

    python tools/mutants.py                         all mutants (`make mutants`)
    python tools/mutants.py --only gae-no-lambda    some of them
    python tools/mutants.py --list                  the list, without running anything
    python tools/mutants.py --markdown docs/mutants.md   also write the table as Markdown
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD_MODULE = "mutant_guard"
GUARD_EXIT = 7  # the guard's exit status: pgax was imported from outside the scratch copy

# Loaded into each pytest run with `-p mutant_guard`; checks where pgax was imported from.
GUARD_SOURCE = f'''"""pytest plugin written by tools/mutants.py: every pgax module must come from the scratch copy."""
import os
import sys
from pathlib import Path

import pytest

SCRATCH = Path(os.environ["PGAX_MUTANT_SCRATCH"]).resolve()


def _outside():
    import pgax  # noqa: F401  (the package itself, even when no test imported it yet)
    return sorted(name for name, module in list(sys.modules.items())
                  if (name == "pgax" or name.startswith("pgax.")) and getattr(module, "__file__", None)
                  and SCRATCH not in Path(module.__file__).resolve().parents)


def pytest_collection_finish(session):
    outside = _outside()
    if outside:
        print(f"mutant_guard: {{outside[0]}} imported from outside {{SCRATCH}}", file=sys.stderr)
        pytest.exit("pgax imported from outside the scratch copy", returncode={GUARD_EXIT})


def pytest_sessionfinish(session, exitstatus):
    if _outside():
        print("mutant_guard: a pgax module was imported from outside the scratch copy", file=sys.stderr)
        session.exitstatus = {GUARD_EXIT}
'''


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace `old` (exactly one occurrence) by `new` in `file`; the tests
    (paths or node ids, optionally narrowed by a `-k` expression) must then fail."""

    id: str
    description: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    k: str | None = None


CH12 = "tests/test_chapter12.py"
LINALG = "tests/test_linalg.py"
UPDATES = "tests/test_updates.py"
DISTRIBUTIONS = "tests/test_distributions.py"
ESTIMATORS = "tests/test_estimators.py"
ORACLE = "tests/test_estimators_oracle.py"
TRPO_TESTS = (f"{CH12}::test_trpo_backtracks_from_a_full_step_that_violates_the_kl_bound",
              f"{CH12}::test_trpo_restores_the_old_parameters_when_no_point_is_accepted",
              f"{CH12}::test_line_search_keeps_theta_when_no_point_improves_the_objective")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("trpo-no-kl-check", "TRPO line search accepts any improving point, ignoring the KL bound",
           "pgax/updates.py",
           "ok = (objective(candidate) > base) & (constraint(candidate) <= max_constraint)",
           "ok = objective(candidate) > base",
           TRPO_TESTS),
    Mutant("trpo-no-restore", "TRPO line search keeps the last candidate when none is accepted",
           "pgax/updates.py",
           "new_theta = jnp.where(accepted, theta + shrink ** j.astype(theta.dtype) * full_step, theta)",
           "new_theta = theta + shrink ** j.astype(theta.dtype) * full_step",
           TRPO_TESTS),
    Mutant("kl-direction-swapped", "mean KL computed as KL(π_new ‖ π_old) instead of KL(π_old ‖ π_new)",
           "pgax/updates.py",
           "samples.old_dist.kl(policy_apply(params, samples.obs))",
           "policy_apply(params, samples.obs).kl(samples.old_dist)",
           (f"{CH12}::test_exercise_12_3_mean_kl_over_sampled_states",)),
    Mutant("categorical-kl-swapped", "Categorical.kl returns KL(other ‖ self)",
           "pgax/distributions.py",
           "return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)",
           "return jnp.sum(jnp.exp(log_q) * (log_q - log_p), axis=-1)",
           (f"{DISTRIBUTIONS}::test_categorical_kl_closed_form_and_zero_on_self",)),
    Mutant("cg-no-damping", "conjugate gradient ignores the damping λ (solves A x = b, not (A + λI) x = b)",
           "pgax/linalg.py",
           "return matvec(v) + damping * v",
           "return matvec(v)",
           (f"{LINALG}::test_cg_with_damping_solves_the_damped_system",)),
    Mutant("cg-no-curvature-guard", "conjugate gradient without its breakdown guard on zero/negative curvature",
           "pgax/linalg.py",
           "broke = ~(curvature > 1e-6 * scale) | ~jnp.isfinite(pap)",
           "broke = ~jnp.isfinite(pap)",
           (f"{LINALG}::test_cg_on_singular_system_stays_finite_and_reports_non_convergence",
            f"{LINALG}::test_cg_stops_at_negative_curvature")),
    Mutant("natural-step-unscaled", "natural step u = F⁻¹g without the scale √(2ε / gᵀF⁻¹g)",
           "pgax/updates.py",
           "return jnp.where(gu > 0, direction * jnp.sqrt(2.0 * epsilon / jnp.where(gu > 0, gu, 1.0)), 0.0)",
           "return jnp.where(gu > 0, direction, 0.0)",
           (f"{CH12}::test_example_12_1_fisher_gradient_direction_and_step",
            f"{CH12}::test_natural_gradient_rule_reproduces_the_closed_form_step")),
    Mutant("restricted-step-no-2", "restricted step √ε u/‖u‖ instead of √(2ε) u/‖u‖",
           "pgax/updates.py",
           "jnp.sqrt(2.0 * epsilon) * grad",
           "jnp.sqrt(epsilon) * grad",
           (f"{CH12}::test_restricted_and_scaled_steps",)),
    Mutant("surrogate-log-ratio", "surrogate weights Â by log ρ instead of the importance ratio ρ",
           "pgax/updates.py",
           "jnp.sum(samples.weight * jnp.exp(log_prob - samples.old_log_prob) * samples.advantage)",
           "jnp.sum(samples.weight * (1.0 + log_prob - samples.old_log_prob) * samples.advantage)",
           (f"{CH12}::test_example_12_1_surrogate_constraint_and_line_search",)),
    Mutant("fisher-no-1/N", "Fisher-vector product sums over the B states instead of averaging",
           "pgax/linalg.py",
           "scale = jnp.full((batch_size,), 1.0 / batch_size)",
           "scale = jnp.ones((batch_size,))",
           (f"{LINALG}::test_fisher_is_hessian_of_mean_kl",)),
    Mutant("empirical-fisher-no-1/m", "empirical Fisher Σ g gᵀ without its 1/m",
           "pgax/linalg.py",
           "return scores.T @ scores / scores.shape[0]",
           "return scores.T @ scores",
           (f"{LINALG}::test_empirical_fisher_and_dense_solves",)),
    Mutant("gaussian-fisher-log-std", "Gaussian Fisher w.r.t. log σ taken as 1 instead of 2",
           "pgax/distributions.py",
           "2.0 * tangent.log_std",
           "1.0 * tangent.log_std",
           (f"{DISTRIBUTIONS}::test_fisher_vector_product_is_hessian_of_kl",)),
    Mutant("gae-no-lambda", "GAE recursion without λ (A_t = δ_t + γ A_{t+1})",
           "pgax/estimators.py",
           "trace = discount_t * lambda_ * (1.0 - _cut_points(r_t, truncated_t))",
           "trace = discount_t * (1.0 - _cut_points(r_t, truncated_t))",
           (f"{ESTIMATORS}::test_gae_hand_computed",)),
    Mutant("gae-no-gamma", "GAE recursion without γ (A_t = δ_t + λ A_{t+1})",
           "pgax/estimators.py",
           "trace = discount_t * lambda_ * (1.0 - _cut_points(r_t, truncated_t))",
           "trace = lambda_ * (1.0 - _cut_points(r_t, truncated_t))",
           (f"{ESTIMATORS}::test_gae_hand_computed",)),
    Mutant("returns-truncation-as-termination", "bootstrapped returns drop V(final obs) at a truncation",
           "pgax/estimators.py",
           "g = r + d * ((1.0 - c) * g_next + c * v)",
           "g = r + d * (1.0 - c) * g_next",
           (f"{ESTIMATORS}::test_scan_equals_reference_loop",)),
    Mutant("gae-truncation-as-termination", "add_gae gives a truncated step discount 0 (no bootstrap)",
           "pgax/algorithms/core.py",
           "discount = gamma * (1.0 - batch.terminated.astype(v_t.dtype))",
           "discount = gamma * (1.0 - (batch.terminated | batch.truncated).astype(v_t.dtype))",
           ("tests/test_algo_a2c.py::test_lambda_one_is_the_bootstrapped_n_step_return_and_zero_the_td_error",)),
    Mutant("gae-termination-bootstrapped", "add_gae bootstraps from V(final obs) after a termination",
           "pgax/algorithms/core.py",
           "discount = gamma * (1.0 - batch.terminated.astype(v_t.dtype))",
           "discount = gamma * jnp.ones_like(v_t)",
           ("tests/test_algo_a2c.py::test_lambda_one_is_the_bootstrapped_n_step_return_and_zero_the_td_error",)),
    Mutant("ppo-clip-max", "PPO's clipped surrogate takes max instead of min",
           "pgax/updates.py",
           "return jnp.minimum(unclipped, clipped), ratio",
           "return jnp.maximum(unclipped, clipped), ratio",
           (f"{UPDATES}::test_clipped_surrogate_values", f"{UPDATES}::test_gradients_of_clamped_samples_are_zero")),
    Mutant("ppo-inverted-ratio", "PPO's ratio π_old / π instead of π / π_old",
           "pgax/updates.py",
           "ratio = jnp.exp(log_prob - old_log_prob)",
           "ratio = jnp.exp(old_log_prob - log_prob)",
           (f"{UPDATES}::test_clipped_surrogate_values", f"{UPDATES}::test_gradients_of_clamped_samples_are_zero")),
    Mutant("ppo-value-clip-min", "PPO's clipped value loss takes min instead of max of the two errors",
           "pgax/updates.py",
           "value_error = jnp.maximum(value_error, jnp.square(value_clipped - minibatch.target))",
           "value_error = jnp.minimum(value_error, jnp.square(value_clipped - minibatch.target))",
           (f"{UPDATES}::test_ppo_loss_by_hand",)),
    Mutant("ppo-entropy-sign", "PPO's loss adds the entropy bonus with the wrong sign (penalises exploration)",
           "pgax/updates.py",
           "loss = policy_loss + vf_coef * value_loss - ent_coef * entropy",
           "loss = policy_loss + vf_coef * value_loss + ent_coef * entropy",
           (f"{UPDATES}::test_ppo_loss_by_hand",)),
    Mutant("ppo-approx-kl-k1", "PPO's approx_kl reports mean(−log ρ) (k1) instead of mean((ρ − 1) − log ρ) (k3)",
           "pgax/updates.py",
           '"approx_kl": jnp.mean(jnp.expm1(log_ratio) - log_ratio),',
           '"approx_kl": jnp.mean(-log_ratio),',
           (f"{UPDATES}::test_ppo_loss_by_hand",)),
    Mutant("ascent-optimizer-descends", "gradient_ascent with an optax optimizer descends on U (no sign flip)",
           "pgax/updates.py",
           "parts.extend([optax.scale(-1.0), optimizer])",
           "parts.extend([optimizer])",
           (f"{CH12}::test_gradient_ascent_with_an_optimizer_ascends",)),
    Mutant("reinforce-g0-estimator", "causal REINFORCE weights use the whole return G_0 instead of G_t",
           "pgax/estimators.py",
           "return actor_critic_weights(reward_to_go(r_t, discount_t, truncated_t), discount_t, truncated_t,",
           "return actor_critic_weights(episode_returns(r_t, discount_t, truncated_t), discount_t, truncated_t,",
           (f"{ORACLE}::test_episode_bookkeeping_and_monte_carlo_returns_match_reference_loops",)),
    Mutant("reinforce-g0-preset", "the REINFORCE preset's reward-to-go targets are the whole return G_0",
           "pgax/algorithms/reinforce.py",
           "target = jax.vmap(estimators.reward_to_go, **over_envs)(reward, discount, batch.truncated)",
           "target = jax.vmap(estimators.episode_returns, **over_envs)(reward, discount, batch.truncated)",
           ("tests/test_algo_reinforce.py::test_monte_carlo_weights_exact",)),
    Mutant("no-discount-weighting", "policy-gradient weights drop γ^{t − t0} even when asked for it",
           "pgax/estimators.py",
           "return discount_from_episode_start(discount_t, truncated_t) * estimate_t",
           "return estimate_t",
           (f"{ORACLE}::test_episode_bookkeeping_and_monte_carlo_returns_match_reference_loops",)),
    Mutant("preset-discount-weighting-ignored", "a preset's --discount-weighting leaves Â_t without its γ^τ",
           "pgax/algorithms/core.py",
           "return batch.replace(advantage=batch.advantage * discount_weights(batch, gamma).astype(batch.advantage.dtype))",
           "return batch",
           ("tests/test_preset_estimates.py::test_discount_weighted_estimate_is_unbiased",)),
    Mutant("reinforce-drops-open-episodes", "REINFORCE forgets the open episode's steps at a window's end",
           "pgax/algorithms/reinforce.py",
           "keep = open_[start:]",
           "keep = jnp.zeros_like(open_[start:])",
           ("tests/test_algo_reinforce.py::test_held_steps_complete_with_their_whole_return_in_the_next_window",
            "tests/test_preset_estimates.py::test_reinforce_uses_the_episodes_that_straddle_windows")),
    Mutant("trajectory-fisher-no-1/K", "the trajectory Fisher (12.10) sums over trajectories instead of averaging",
           "pgax/linalg.py",
           "(fv,) = vjp_fn(keep * coefficient[segment_ids] / count)",
           "(fv,) = vjp_fn(keep * coefficient[segment_ids])",
           (f"{CH12}::test_example_12_1_by_the_library_rules_with_the_trajectory_fisher",)),
    Mutant("nac-td-critic-drops-fit", "NAC's TD critic steps along Σ q Â ψ without its − ψᵀw term",
           "pgax/algorithms/nac.py",
           "return w + scale * psi_t.T @ (q_t * (adv_t - psi_t @ w)), None",
           "return w + scale * psi_t.T @ (q_t * adv_t), None",
           ("tests/test_algo_nac.py::test_td_critic_expected_update_converges_to_the_exact_natural_gradient",)),
    Mutant("action-dependent-baseline", "QAC's baseline π(a|s) Q(s, a) of the taken action, not Σ_b π(b|s) Q(s, b)",
           "pgax/algorithms/qac.py",
           "v = jnp.sum(dist.probs * q_all, axis=-1)",
           "v = jnp.exp(dist.log_prob(action)) * q_sa",
           ("tests/test_algo_qac.py::test_one_step_is_the_sarsa_critic_update_and_the_q_weighted_actor_step",)),
    Mutant("adaptive-beta-inverted", "adaptive KL penalty halves β when the KL is too large and doubles it when small",
           "pgax/updates.py",
           "new_beta = jnp.where(kl < kl_target / 1.5, state.beta / 2.0,\n"
           "                                 jnp.where(kl > kl_target * 1.5, state.beta * 2.0, state.beta))",
           "new_beta = jnp.where(kl < kl_target / 1.5, state.beta * 2.0,\n"
           "                                 jnp.where(kl > kl_target * 1.5, state.beta / 2.0, state.beta))",
           (f"{CH12}::test_kl_penalty_adapts_beta",)),
    Mutant("cpi-alpha-no-1-gamma", "CPI's bound step α = 𝔸 / (4γ ε_A), missing the factor (1 − γ)",
           "pgax/updates.py",
           "jnp.clip((1.0 - gamma) * expected / jnp.where(denom > 0, denom, 1.0),",
           "jnp.clip(expected / jnp.where(denom > 0, denom, 1.0),",
           (f"{CH12}::test_cpi_bound_step_by_hand",)),
    Mutant("cpi-alpha-2-not-4", "CPI's bound step α = (1 − γ)𝔸 / (2γ ε_A), twice the maximiser of the bound",
           "pgax/updates.py",
           "denom = 4.0 * gamma * eps_a",
           "denom = 2.0 * gamma * eps_a",
           (f"{CH12}::test_cpi_bound_step_by_hand",)),
    Mutant("td-lambda-traces-not-reset", "TD(λ) actor-critic keeps its eligibility traces across episode ends",
           "pgax/algorithms/online.py",
           "lambda z: jnp.where(per_env(done, z), jnp.zeros_like(z), z), trace)",
           "lambda z: z, trace)",
           ("tests/test_algo_online.py::test_traces_follow_the_backward_view_and_reset_at_episode_ends",)),
    Mutant("eligibility-traces-truncation", "eligibility_traces carry the trace across a truncation",
           "pgax/estimators.py",
           "        keep = keep * (1.0 - jnp.asarray(truncated_t, discount_t.dtype))\n",
           "        pass\n",
           (f"{ORACLE}::test_td_lambda_backward_view_equals_forward_view",)),
    Mutant("resume-keeps-rows-after-checkpoint", "a resumed run appends to metrics.csv without cutting it back to the checkpoint",
           "pgax/experiment.py",
           'resume_at=restored_meta["metrics_offset"] if restored_meta else None)',
           'resume_at=(run_dir / "metrics.csv").stat().st_size if restored_meta else None)',
           ("tests/test_experiment.py::test_a_run_killed_with_sigkill_and_resumed_is_bit_identical_to_the_uninterrupted_run",
            "tests/test_experiment.py::test_sigterm_stops_at_a_chunk_boundary_keeps_the_chunk_and_resume_finishes")),
    Mutant("resume-keeps-fresh-key", "a resumed run restores the state but keeps the freshly initialised random key",
           "pgax/experiment.py",
           'state = driver.restart(store.restore(step, "state", state), step)',
           'state = driver.restart(store.restore(step, "state", state).replace(key=state.key), step)',
           ("tests/test_experiment.py::test_resume_from_an_earlier_checkpoint_or_with_more_steps_is_bit_identical_to_the_whole_run",)),
    Mutant("loop-drops-chunk-in-flight", "a failing chunk launch loses the completed chunk still in flight",
           "pgax/train.py",
           "                    except (Exception, KeyboardInterrupt) as e:  # the chunk in flight is still delivered\n"
           "                        launch_failure = e",
           "                    except (Exception, KeyboardInterrupt) as e:  # the chunk in flight is still delivered\n"
           "                        raise e",
           ("tests/test_train.py::test_train_loop_keeps_the_completed_chunks_on_an_error_and_on_a_stop_request",)),
    Mutant("nonfinite-ignores-env", "the divergence check looks at parameters and losses only, not at env outputs",
           "pgax/train.py",
           "env_ok = all_finite([batch.obs, batch.next_obs, batch.reward])",
           "env_ok = jnp.asarray(True)",
           ("tests/test_experiment.py::test_an_env_that_turns_nan_is_reported_as_non_finite_env_outputs",)),
    Mutant("checkpoint-fit-unchecked", "a checkpoint of another algorithm or env is restored without a check",
           "pgax/experiment.py",
           "        theirs = meta.get(key)\n        if theirs != ours:",
           "        theirs = meta.get(key)\n        if False:",
           ("tests/test_experiment.py::test_a_checkpoint_of_another_run_is_one_line_and_exit_2",)),
    Mutant("eval-keys-split-over-seeds", "evaluation keys split from the first seed over the seed count",
           "pgax/train.py",
           "return stack_seeds([jax.random.fold_in(jax.random.PRNGKey(s), EVAL_STREAM) for s in seeds])",
           "return jax.random.split(jax.random.PRNGKey(seeds[0]), len(seeds))",
           ("tests/test_experiment.py::test_a_seeds_evaluation_does_not_depend_on_the_seeds_beside_it",)),
    Mutant("offpolicy-no-importance-weights", "the off-policy actor gradient drops ρ = π/β (on-policy formula on β's actions)",
           "pgax/updates.py",
           "rho = importance_weights(jax.lax.stop_gradient(log_prob), behaviour_log_prob, max_weight)",
           "rho = jnp.ones_like(log_prob)",
           ("tests/test_offpolicy.py::test_importance_weighted_gradient_is_unbiased_for_the_exact_policy_gradient",)),
    Mutant("pathwise-action-detached", "the pathwise actor objective stops the gradient through the sampled action",
           "pgax/updates.py",
           "return jnp.mean(q_fn(obs, action) - entropy_coef * log_prob)",
           "return jnp.mean(q_fn(obs, jax.lax.stop_gradient(action)) - entropy_coef * log_prob)",
           ("tests/test_offpolicy.py::test_pathwise_and_likelihood_ratio_gradients_are_unbiased_on_lqr",)),
    Mutant("expected-target-ignores-policy", "the expected Bellman target averages Q(s′, ·) uniformly instead of under π(·|s′)",
           "pgax/estimators.py",
           "return r_t + discount_t * jnp.sum(pi_next_t * q_next_t, axis=-1)",
           "return r_t + discount_t * jnp.mean(q_next_t, axis=-1)",
           ("tests/test_offpolicy.py::test_bellman_critic_from_replayed_behaviour_data_converges_to_the_exact_q_of_the_target_policy",)),
    Mutant("squashed-gaussian-no-jacobian", "the squashed Gaussian's log-density omits the tanh Jacobian",
           "pgax/distributions.py",
           "return self._gaussian().log_prob(u) - self._log_det(u)\n\n    def mode",
           "return self._gaussian().log_prob(u)\n\n    def mode",
           ("tests/test_offpolicy.py::test_squashed_gaussian_density_is_the_change_of_variables_and_integrates_to_one",)),
    Mutant("td3-actor-action-detached", "the deterministic actor's loss stops the gradient through μ_θ(s), so the actor never moves",
           "pgax/algorithms/offpolicy.py",
           'return -jnp.mean(q_apply(q, s["obs"], actor.apply(theta, s["obs"]))[0]), None',
           'return -jnp.mean(q_apply(q, s["obs"], jax.lax.stop_gradient(actor.apply(theta, s["obs"])))[0]), None',
           ("tests/test_offpolicy.py::test_learns_pendulum",), k="td3"),
    Mutant("replay-stale-insert-window", "sampling before the insert reads the insert window from the old buffer (stale rows)",
           "pgax/replay.py",
           "return jnp.where(mask, new, old)",
           "return old",
           ("tests/test_offpolicy.py::test_sample_after_add_draws_exactly_what_sample_draws_from_the_added_buffer",)),
    Mutant("replay-stored-count-ignores-insert", "sampling before the insert draws only among the items stored before it",
           "pgax/replay.py",
           "stored = jnp.where(full, capacity, after % capacity)",
           "stored = jnp.where(state.is_full, capacity, jnp.maximum(state.current_index, 1))",
           ("tests/test_offpolicy.py::test_sample_after_add_draws_exactly_what_sample_draws_from_the_added_buffer",)),
    Mutant("sweep-rows-tiled", "a sweep's per-row hyperparameters tiled instead of repeated, so seeds get other configurations' values",
           "pgax/sweep.py",
           "hyper = {k: np.repeat(np.array([getattr(c, k) for c in configs], np.float32), S)",
           "hyper = {k: np.tile(np.array([getattr(c, k) for c in configs], np.float32), S)",
           ("tests/test_sweep.py::test_a_configuration_does_not_depend_on_the_others_and_equals_a_plain_run",)),
    Mutant("rows-on-one-device", "--devices silently ignored: the rows stay on the first device however many JAX sees",
           "pgax/train.py",
           "n = len(available) if requested == 0 else requested",
           "n = 1",
           ("tests/test_devices.py::test_rows_split_over_two_devices_equal_one_device_to_float32_rounding",)),
    Mutant("search-minimises", "the search's study minimises the return: the sampler chases the worst configurations",
           "pgax/search.py",
           'direction="maximize"',
           'direction="minimize"',
           ("tests/test_search.py::test_a_search_records_its_trials_and_each_value_is_its_runs_evaluation",)),
    Mutant("pruned-program-trains-on", "a program whose trials are all pruned trains to the end anyway",
           "pgax/sweep.py",
           "stop=lambda: stop() or all(x is not None for x in pruned),",
           "stop=lambda: stop(),",
           ("tests/test_search.py::test_trials_below_the_median_of_completed_ones_are_pruned_and_their_program_stops",)),
    Mutant("ray-no-retries", "--retries ignored: a Ray task whose worker died is never run again",
           "pgax/distributed.py",
           "max_retries=backend.retries, retry_exceptions=False",
           "max_retries=0, retry_exceptions=False",
           ("tests/test_ray.py::test_on_a_ray_cluster_sweeps_equal_local_ones_survive_killed_workers_and_resume",)),
    Mutant("multidiscrete-first-component-only", "a MultiDiscrete action's log-probability counts its first component only",
           "pgax/distributions.py",
           "return sum(c.log_prob(action[..., d]) for d, c in enumerate(self.components()))",
           "return self.components()[0].log_prob(action[..., 0])",
           ("tests/test_multidiscrete.py",)),
    Mutant("cnn-kernel-order", "the image patches are laid out column-major while the kernel is reshaped row-major",
           "pgax/policies.py",
           "for i in range(k) for j in range(k)], axis=-1)",
           "for j in range(k) for i in range(k)], axis=-1)",
           ("tests/test_cnn.py",)),
    Mutant("cnn-auto-is-mlp", "--network auto reads MinAtar's grid as a flat vector (no CNN)",
           "pgax/algorithms/core.py",
           '    if network == "mlp" or getattr(config, "policy", "mlp") != "mlp":',
           '    if network in ("mlp", "auto") or getattr(config, "policy", "mlp") != "mlp":',
           ("tests/test_cnn.py",)),
)


# ------------------------------------------------------------------ the run


@dataclass
class Outcome:
    mutant: Mutant
    status: str          # killed | survived | stale | error
    detail: str          # the killing test, or why it is an error
    seconds: float


def repository_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files that exist (so a new test file travels too)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (root / f).is_file()})


def occurrences(root: Path, mutant: Mutant) -> int:
    path = root / mutant.file
    return path.read_text().count(mutant.old) if path.is_file() else -1


def make_scratch(root: Path, files: list[str], parent: Path, name: str) -> Path:
    """A copy of `files` under parent/name, plus the import guard plugin."""
    scratch = parent / name
    for f in files:
        target = scratch / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, target)
    (scratch / f"{GUARD_MODULE}.py").write_text(GUARD_SOURCE)
    return scratch


def plant(scratch: Path, mutant: Mutant) -> None:
    path = scratch / mutant.file
    text = path.read_text()
    assert text.count(mutant.old) == 1, mutant.id
    path.write_text(text.replace(mutant.old, mutant.new))


def pytest_command(tests: tuple[str, ...], k: str | None, stop_first: bool) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-p", GUARD_MODULE,
               "-rf", "--no-header", "-o", "addopts="]
    if stop_first:
        command.append("-x")
    if k:
        command += ["-k", k]
    return command + list(tests)


def run_tests(scratch: Path, tests: tuple[str, ...], k: str | None, timeout: float,
              stop_first: bool) -> tuple[int | None, str, float]:
    """(pytest's exit status or None on timeout, its output, seconds) for a run inside `scratch`."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1",
           "PGAX_MUTANT_SCRATCH": str(scratch)}
    start = time.perf_counter()
    try:
        proc = subprocess.run(pytest_command(tests, k, stop_first), cwd=scratch, env=env, capture_output=True,
                              text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, output, time.perf_counter() - start


def failed_tests(output: str) -> list[str]:
    """Node ids from pytest's `FAILED node - message` summary lines."""
    return [m.group(1) for m in re.finditer(r"^FAILED (\S+)", output, re.MULTILINE)]


def last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def selection(m: Mutant) -> tuple[tuple[str, ...], str | None]:
    return m.tests, m.k


def covers(entry: str, node: str) -> bool:
    """Whether a test selection entry (a path or a node id) selects the node id `node`."""
    return node == entry or node.startswith(entry + "::") or node.startswith(entry + "[")


def run_baselines(root: Path, files: list[str], parent: Path, mutants: list[Mutant], timeout: float,
                  jobs: int) -> dict:
    """Every distinct test selection against an unmutated copy: {selection: None | why it fails}.

    Selections without `-k` run together in one pytest run over the union of their entries; each
    selection with `-k` runs on its own.
    """
    scratch = make_scratch(root, files, parent, "baseline")
    selections = sorted({selection(m) for m in mutants}, key=str)
    plain = [sel for sel in selections if sel[1] is None]
    runs = [(tuple(sorted({entry for sel in plain for entry in sel[0]})), None)] if plain else []
    runs += [sel for sel in selections if sel[1] is not None]

    def limit(run):  # the union run holds every plain selection: its timeout grows with them
        return timeout * max(1, len(plain) // 4) if run[1] is None else timeout

    def one(run):
        rc, output, seconds = run_tests(scratch, run[0], run[1], limit(run), stop_first=False)
        return run, rc, output, seconds

    results = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for run, rc, output, seconds in pool.map(one, runs):
            failed = failed_tests(output)
            ok = rc == 0
            print(f"  baseline {'ok  ' if ok else 'FAIL'} {seconds:6.1f} s  {len(run[0])} entries"
                  + (f" -k {run[1]!r}" if run[1] else "") + ("" if ok else f": {last_line(output)}"), flush=True)
            for sel in (plain if run[1] is None else [run]):
                if ok:
                    results[sel] = None
                elif rc is None:
                    results[sel] = f"baseline timed out after {limit(run):.0f} s"
                elif rc == 1 and failed:
                    mine = [node for node in failed if any(covers(entry, node) for entry in sel[0])]
                    results[sel] = f"baseline fails: {', '.join(mine)}" if mine else None
                else:
                    results[sel] = f"baseline exit {rc}: {last_line(output)}"
    return results


def run_mutant(root: Path, files: list[str], parent: Path, mutant: Mutant, baseline_problem: str | None,
               timeout: float) -> Outcome:
    count = occurrences(root, mutant)
    if count != 1:
        where = "file missing" if count < 0 else f"old text found {count} times, expected once"
        return Outcome(mutant, "stale", where, 0.0)
    if baseline_problem:
        return Outcome(mutant, "error", baseline_problem, 0.0)
    scratch = make_scratch(root, files, parent, re.sub(r"[^\w.-]", "_", mutant.id))
    plant(scratch, mutant)
    rc, output, seconds = run_tests(scratch, mutant.tests, mutant.k, timeout, stop_first=True)
    shutil.rmtree(scratch, ignore_errors=True)
    if rc is None:
        return Outcome(mutant, "error", f"timed out after {timeout:.0f} s", seconds)
    if rc == 0:
        return Outcome(mutant, "survived", "all selected tests pass", seconds)
    failed = failed_tests(output)
    if rc == 1 and failed:
        return Outcome(mutant, "killed", failed[0], seconds)
    if rc == GUARD_EXIT:
        return Outcome(mutant, "error", "pgax imported from outside the scratch copy", seconds)
    return Outcome(mutant, "error", f"pytest exit {rc}: {last_line(output)}", seconds)


def markdown(outcomes: list[Outcome], command: str, total_seconds: float) -> str:
    killed = sum(o.status == "killed" for o in outcomes)
    lines = [
        "# Mutation checks",
        "",
        "Each row is a bug that policy-gradient code has shipped, planted alone in a scratch copy of the",
        "repository; the listed tests run against that copy (pgax imported from it, checked) and must fail.",
        "The list, with each mutant's exact old → new text and test selection, is `MUTANTS` in",
        "`tools/mutants.py`. Generated by the command below; do not edit by hand.",
        "",
        f"    {command}",
        "",
        f"Date: {datetime.date.today().isoformat()}. {killed} of {len(outcomes)} mutants killed; "
        f"{total_seconds / 60:.1f} min in all (a baseline run of each test selection included).",
        "",
        "| mutant | bug planted | file | result | killed by | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        detail = o.detail.replace("|", "\\|")
        killer = f"`{detail}`" if o.status == "killed" else detail
        lines.append(f"| `{o.mutant.id}` | {o.mutant.description.replace('|', '/')} | `{o.mutant.file}` | "
                     f"{o.status} | {killer} | {o.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="print the mutants and whether each still applies")
    parser.add_argument("--markdown", metavar="FILE", help="also write the result table to FILE")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated runs of each selection")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pytest run (default 300; the one baseline run of all plain selections gets this × a quarter of their number)")
    args = parser.parse_args(argv)

    ids = [m.id for m in MUTANTS]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        parser.error(f"duplicate mutant ids: {sorted(duplicates)}")
    mutants = list(MUTANTS)
    if args.only:
        unknown = sorted(set(args.only) - set(ids))
        if unknown:
            parser.error(f"unknown mutant ids {unknown}; see --list")
        mutants = [m for m in MUTANTS if m.id in args.only]

    if args.list:
        for m in mutants:
            count = occurrences(ROOT, m)
            state = "ok" if count == 1 else f"STALE ({count} matches)"
            print(f"{m.id:36s} {state:18s} {m.file:30s} {m.description}")
        return 0

    command = "python tools/mutants.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    files = repository_files(ROOT)
    with tempfile.TemporaryDirectory(prefix="pgax-mutants-") as tmp:
        parent = Path(tmp)
        live = [m for m in mutants if occurrences(ROOT, m) == 1]
        baselines = {}
        if not args.no_baseline and live:
            print(f"baseline: {len({selection(m) for m in live})} test selections on the unmutated copy", flush=True)
            baselines = run_baselines(ROOT, files, parent, live, args.timeout, args.jobs)
        print(f"mutants: {len(mutants)}", flush=True)

        def one(m):
            outcome = run_mutant(ROOT, files, parent, m, baselines.get(selection(m)), args.timeout)
            print(f"  {outcome.status:8s} {outcome.seconds:6.1f} s  {m.id:36s} {outcome.detail}", flush=True)
            return outcome

        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            outcomes = list(pool.map(one, mutants))
    total = time.perf_counter() - start

    width = max(len(m.id) for m in mutants)
    print(f"\n{'mutant':{width}s}  {'result':8s}  {'time':>7s}  killed by / detail")
    for o in outcomes:
        print(f"{o.mutant.id:{width}s}  {o.status:8s}  {o.seconds:6.1f}s  {o.detail}")
    bad = [o for o in outcomes if o.status != "killed"]
    print(f"\n{len(outcomes) - len(bad)} of {len(outcomes)} killed in {total / 60:.1f} min"
          + (f"; not killed: {', '.join(o.mutant.id + ' (' + o.status + ')' for o in bad)}" if bad else ""))
    if args.markdown:
        Path(args.markdown).write_text(markdown(outcomes, command.strip(), total))
        print(f"wrote {args.markdown}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

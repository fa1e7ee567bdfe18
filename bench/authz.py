"""Latency of ``access.authorize()`` per decision, with 1,000 role bindings in play.

Set-up: one tenant with 20 deployments of 10 agents each; 1,000 role bindings
spread over 200 principals (5 each, random role, random scope among tenant,
deployments and agents), plus one principal that alone holds 1,000
bindings. Each timed call is one decision for a random (principal, action,
resource) triple, a mix of allows and denies (including cross-tenant).

With ``--users N`` (default 10,000; issue 7) the timed principals are instead
N users provisioned through the real SCIM service into an embedded
installation, in ``--groups`` groups (each user in one to three), each bound
to up to three roles, and loaded back by ``load_principal`` as a request
does; the JSON gains a ``directory`` object (counts, set-up time, load time).

Prints one JSON object: median and p99 in microseconds of ``authorize()``
(the production call: it memoises decisions and, for the shipped policy
shape, decides by class, asking Cedar once per class; ADR 10), overall and for the
1,000-binding principal, with the fraction of timed decisions that repeat an
earlier one; and, under ``cedar_every_time``, the same for Cedar evaluations
with the memo bypassed. Target: median <= 100 us.

This machine's speed drifts by up to 1.5x from minute to minute (a shared
VM), so the run is split into rounds with the median of each reported, and a
calibration figure (median time of a fixed pure-Python loop, ~5 us on an
unloaded modern core) is printed beside the result.

    python bench/authz.py [--decisions N] [--rounds R] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

from _authz_directory import directory, median_p99  # bench/ is on sys.path when run
from callvault.access import (
    Action,
    Binding,
    Decision,
    Principal,
    Resource,
    Role,
    ScopeKind,
    authorize,
    default_authorizer,
)

Scopes = list[tuple[ScopeKind, str]]


def _world(
    rng: random.Random, tenant: str = "ten_" + "a" * 26
) -> tuple[list[Principal], Principal, list[Resource], Scopes]:
    deployments = [f"dep_{'b' * 23}{i:03d}" for i in range(20)]
    agents = {
        d: [f"agt_{'c' * 20}{i:03d}{j:03d}" for j in range(10)] for i, d in enumerate(deployments)
    }
    scopes: list[tuple[ScopeKind, str]] = [(ScopeKind.TENANT, tenant)]
    scopes += [(ScopeKind.DEPLOYMENT, d) for d in deployments]
    scopes += [(ScopeKind.AGENT, a) for d in deployments for a in agents[d]]
    roles = list(Role)

    def bindings(n: int) -> frozenset[Binding]:
        out = set()
        while len(out) < n:
            kind, sid = rng.choice(scopes)
            out.add(Binding(rng.choice(roles), kind, sid))
        return frozenset(out)

    principals = [
        Principal(f"prn_{'d' * 20}{i:06d}", tenant, "user", active=True, bindings=bindings(5))
        for i in range(200)
    ]
    heavy = Principal(f"prn_{'e' * 26}", tenant, "user", active=True, bindings=bindings(1000))
    resources: list[Resource] = [Resource.tenant(tenant)]
    for d in deployments:
        resources.append(Resource.deployment(tenant, d))
        for a in agents[d]:
            resources.append(Resource.agent(tenant, d, a))
            resources.append(Resource.call(tenant, d, a, f"call_{a[4:]}"))
    # A tenth of the resources belong to another tenant: the wall must deny them.
    other = "ten_" + "f" * 26
    resources += [Resource.deployment(other, f"dep_{'g' * 23}{i:03d}") for i in range(15)]
    return principals, heavy, resources, scopes


Decide = Callable[[Principal, Action, Resource], Decision]


def _time(
    decide: list[tuple[Principal, Action, Resource]], fn: Decide = authorize
) -> tuple[list[float], int]:
    samples: list[float] = []
    allowed = 0
    for principal, action, resource in decide:
        t0 = time.perf_counter_ns()
        decision = fn(principal, action, resource)
        samples.append((time.perf_counter_ns() - t0) / 1000)
        allowed += decision.allowed
    return samples, allowed


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def _calibration_us() -> float:
    samples = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        sum(range(1000))
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return round(statistics.median(samples), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=10_000, help="SCIM users (0: none)")
    parser.add_argument("--groups", type=int, default=200, help="SCIM groups")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with ExitStack() as stack:
        _run(args, rng, stack)


def _run(args: argparse.Namespace, rng: random.Random, stack: ExitStack) -> None:
    principals, heavy, resources, scopes = _world(rng)
    extra: dict[str, object] = {}
    if args.users > 0:
        # The directory's tenant replaces the synthetic one: the same scopes and
        # resources under its id, the timed principals drawn from its 10k users.
        below = [(kind, sid) for kind, sid in scopes if kind is not ScopeKind.TENANT]
        found = stack.enter_context(directory(args.users, args.groups, below, rng))
        _, heavy, resources, _ = _world(random.Random(args.seed), found.tenant_id)
        principals = found.principals
        extra["directory"] = {
            "scim_users": len(found.principals),
            "scim_groups": found.groups,
            "group_memberships": found.memberships,
            "role_bindings": found.role_bindings,
            "setup_s": found.setup_s,
            "load_principal": median_p99(found.load_principal_us),
        }
    actions = list(Action)

    def draw(n: int, who: list[Principal]) -> list[tuple[Principal, Action, Resource]]:
        return [(rng.choice(who), rng.choice(actions), rng.choice(resources)) for _ in range(n)]

    mixed = draw(args.decisions, principals)
    heavy_run = draw(args.decisions // 5, [heavy])
    # Warm-up on other draws: parse the policy set and fill the per-principal
    # entity cache, as a running server has after its first requests.
    _time(draw(2000, principals))
    _time(draw(200, [heavy]))
    evaluate = default_authorizer().evaluate  # Cedar every time: the decision memo bypassed
    mixed_samples: list[float] = []
    heavy_samples: list[float] = []
    cedar_samples: list[float] = []
    mixed_allowed = heavy_allowed = 0
    round_medians: list[float] = []
    calibration = []
    step, hstep = len(mixed) // args.rounds, len(heavy_run) // args.rounds
    gc.disable()
    for r in range(args.rounds):
        calibration.append(_calibration_us())
        part = mixed[r * step : (r + 1) * step]
        ms, ma = _time(part)
        hs, ha = _time(heavy_run[r * hstep : (r + 1) * hstep])
        cedar_samples += _time(part[: step // 4], evaluate)[0]
        mixed_samples += ms
        heavy_samples += hs
        mixed_allowed += ma
        heavy_allowed += ha
        round_medians.append(round(statistics.median(ms), 1))
    gc.enable()
    mixed = mixed[: step * args.rounds]
    heavy_run = heavy_run[: hstep * args.rounds]
    repeats = len(mixed) - len(set(mixed))
    heavy_repeats = len(heavy_run) - len(set(heavy_run))
    print(
        json.dumps(
            {
                "bench": "authz",
                "role_bindings": sum(len(p.bindings) for p in principals),
                "principals": len(principals),
                "decisions": len(mixed),
                "allowed_fraction": round(mixed_allowed / len(mixed), 3),
                # authorize() memoises decisions; this many of the timed ones
                # repeat an earlier triple (and so may be served from the memo):
                "repeated_fraction": round(repeats / len(mixed), 3),
                **_summary(mixed_samples),
                "cedar_every_time": {"decisions": len(cedar_samples), **_summary(cedar_samples)},
                "heavy_principal": {
                    "role_bindings": len(heavy.bindings),
                    "decisions": len(heavy_run),
                    "allowed_fraction": round(heavy_allowed / len(heavy_run), 3),
                    "repeated_fraction": round(heavy_repeats / len(heavy_run), 3),
                    **_summary(heavy_samples),
                },
                **extra,
                "round_medians_us": round_medians,
                "calibration_us": calibration,
                "target_median_us": 100,
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

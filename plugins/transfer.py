"""Black-box transfer attack (Finlayson et al., seed 001, "black box" setting).

The attacker has no access to the victim model: PGD is run on an independently trained
surrogate (its own data half and seed), and the resulting images are given to the victim.
The engine evaluates them on the victim, so success here means the attack transferred.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import Attack, AttackResult, param


class TransferPGD(Attack):
    name = "transfer-pgd"
    summary = "PGD crafted on a surrogate model, evaluated on the victim (black box)."
    threat = "transfer"
    scope = "per-image"
    version = "1"
    needs_surrogate = True

    @dataclass
    class Params:
        eps: float = param(0.01, min=0.0, max=1.0, step=0.001, help="L∞ budget in [0,1]")
        steps: int = param(20, min=1, max=10000, step=1, help="PGD iterations on the surrogate")
        random_start: bool = param(True, help="random start inside the ball")

    def run(self, model, images, labels, target, params, ctx) -> AttackResult:
        if ctx.surrogate is None:
            raise ValueError("the transfer attack needs a surrogate model (choose one)")
        pgd = ctx.plugin("pgd")
        pgd_params = pgd.Params(eps=params.eps, steps=params.steps,
                                random_start=params.random_start, early_stop=False)
        # The surrogate's own answers stand in for labels the attacker cannot query.
        result = pgd.run(ctx.surrogate, images, labels, target, pgd_params, ctx)
        result.notes = "crafted on the surrogate; the victim was never queried"
        return result

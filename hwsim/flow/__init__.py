"""Flows: named, resumable steps that each take and return an artifact under one build folder."""

from .core import Flow, Step, StepContext

__all__ = ["Flow", "Step", "StepContext", "model_flow"]


def model_flow(model: str, args) -> Flow:
    """The flow of ``snn``, ``swiftchannel`` or ``airfm`` from ``hwsim run``'s arguments: the
    model's small default, ``--tiny`` sizes, and the options the user set on top."""
    given = {k: v for k, v in {"epochs": args.epochs, "qat_epochs": args.qat_epochs,
                               "seed": args.seed}.items() if v is not None}
    if args.target:
        given["target"] = args.target
    if args.sweep:
        given["sweep"] = args.sweep
    if model == "swiftchannel":
        from .swiftchannel import swiftchannel_flow

        if args.bits not in (None, 8):
            from hwsim.errors import HwsimError

            raise HwsimError(f"swiftchannel's hardware is int8; --bits {args.bits} is not "
                             f"supported (see `hwsim sweep swiftchannel` for other widths)")
        tiny = {"bs_ant": 4, "subcarriers": 16, "n_train": 48, "epochs": 1, "n_test": 8,
                "student": {"blocks": 1, "feat": 4, "mid": 4, "down": 2}}
        kw = {**(tiny if args.tiny else {}), **given, "synth": args.synth}
        if args.train:
            kw["n_train"] = args.train
        if args.test:
            kw["n_test"] = args.test
        return swiftchannel_flow(args.out, **kw)
    if model == "airfm":
        from .airfm import airfm_flow

        tiny = {"antennas": 4, "subcarriers": 8, "past": 4, "dim": 8, "layers": 1,
                "window": (2, 4), "per": 8, "epochs": 1, "n_test": 4}
        kw = {**(tiny if args.tiny else {}), **given}
        for opt, key in ((args.train, "per"), (args.test, "n_test"), (args.bits, "bits")):
            if opt is not None:
                kw[key] = opt
        return airfm_flow(args.out, **kw)
    from .snn import snn_flow

    tiny = {"limit": 30, "epochs": 1, "sim_steps": 2, "cost_samples": 2}
    kw = {**(tiny if args.tiny else {}), **given}
    if args.sim_steps is not None:
        kw["sim_steps"] = args.sim_steps
    if args.sim:
        kw["sim"] = args.sim[-1]
    if args.train is not None:
        kw["limit"] = args.train
    if args.bits is not None:
        kw["bits"] = args.bits
    return snn_flow(args.out, **kw)

#!/usr/bin/env python3
"""Reference trajectories from PyTorch (float64) for tests/pytorch_reference.rs.

For each case: an MLP in nn.Linear layout, a fixed initial flat parameter vector,
fixed training points, full-batch steps (so batch order cannot matter) with one
torch.optim optimiser, optionally wrapped in SAM/ASAM exactly as davda54/sam does.
The flat parameters after every step are written to tests/data/torch_reference.json.

Run: python3 scripts/torch_reference.py   (needs `pip install torch`; not needed by `make test`)
"""
import json
import math
import pathlib

import torch

torch.set_default_dtype(torch.float64)


def make_mlp(widths, act):
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "sigmoid": torch.nn.Sigmoid}
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(acts[act]())
    return torch.nn.Sequential(*layers)


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).tolist()


def sam_step(model, opt, loss_fn, rho, adaptive):
    """davda54/sam first_step + second_step, with the closure recomputing the same batch."""
    loss = loss_fn()
    loss.backward()
    params = [p for p in model.parameters()]
    norm = torch.norm(torch.stack([((torch.abs(p) if adaptive else 1.0) * p.grad).norm(p=2) for p in params]), p=2)
    scale = rho / (norm + 1e-12)
    old = []
    with torch.no_grad():
        for p in params:
            old.append(p.data.clone())
            e_w = (torch.pow(p, 2) if adaptive else 1.0) * p.grad * scale
            p.add_(e_w)
    opt.zero_grad()
    loss_fn().backward()
    with torch.no_grad():
        for p, o in zip(params, old):
            p.data = o
    opt.step()
    opt.zero_grad()


def run_case(case, gen):
    widths = [2] + case["hidden"] + [case["classes"]]
    model = make_mlp(widths, case["activation"])
    init = flat(model)
    n = 12
    x = torch.randn(n, 2, generator=gen)
    y = torch.randint(0, case["classes"], (n,), generator=gen)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=case.get("label_smoothing", 0.0))
    kind, kw = case["optimizer"]["kind"], {k: v for k, v in case["optimizer"].items() if k != "kind"}
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}[kind]
    opt = cls(model.parameters(), foreach=False, **kw)
    loss_fn = lambda: ce(model(x), y)
    trajectory = []
    for _ in range(case["steps"]):
        if case.get("sam"):
            sam_step(model, opt, loss_fn, case["sam"]["rho"], case["sam"].get("adaptive", False))
        else:
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
        trajectory.append(flat(model))
    return {**case, "init": init, "points": x.tolist(), "labels": y.tolist(), "trajectory": trajectory}


CASES = [
    {"name": "sgd", "optimizer": {"kind": "sgd", "lr": 0.3}},
    {"name": "sgd_momentum_wd", "optimizer": {"kind": "sgd", "lr": 0.2, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.1}},
    {"name": "sgd_nesterov", "optimizer": {"kind": "sgd", "lr": 0.2, "momentum": 0.8, "nesterov": True, "weight_decay": 0.001}},
    {"name": "adam", "optimizer": {"kind": "adam", "lr": 0.01, "betas": [0.8, 0.95], "weight_decay": 0.02}},
    {"name": "adamw", "optimizer": {"kind": "adamw", "lr": 0.01, "weight_decay": 0.1}},
    {"name": "rmsprop", "optimizer": {"kind": "rmsprop", "lr": 0.01, "alpha": 0.9, "weight_decay": 0.01}},
    {"name": "rmsprop_centered_momentum", "optimizer": {"kind": "rmsprop", "lr": 0.005, "momentum": 0.5, "centered": True}},
    {"name": "sam_sgd", "optimizer": {"kind": "sgd", "lr": 0.2, "momentum": 0.9}, "sam": {"rho": 0.1}},
    {"name": "asam_sgd", "optimizer": {"kind": "sgd", "lr": 0.2, "momentum": 0.9}, "sam": {"rho": 0.5, "adaptive": True}},
    {"name": "sam_adam", "optimizer": {"kind": "adam", "lr": 0.01}, "sam": {"rho": 0.05}},
    {"name": "relu_sam", "activation": "relu", "optimizer": {"kind": "sgd", "lr": 0.1}, "sam": {"rho": 0.05}},
    {"name": "gelu_smoothing", "activation": "gelu", "label_smoothing": 0.1, "classes": 3, "optimizer": {"kind": "sgd", "lr": 0.1, "momentum": 0.5}},
    {"name": "sigmoid_deep", "activation": "sigmoid", "hidden": [5, 4, 3], "optimizer": {"kind": "adam", "lr": 0.02}},
]


def main():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    out = []
    for case in CASES:
        case = {"activation": "tanh", "hidden": [8, 8], "classes": 2, "steps": 5, **case}
        out.append(run_case(case, gen))
    path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_reference.json"
    path.write_text(json.dumps({"torch_version": torch.__version__, "cases": out}, indent=None) + "\n")
    print(f"wrote {len(out)} cases to {path}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch (float64) references for issue 12's knobs, for tests/pytorch_knobs.rs.

- Dropout: torch.nn.functional.dropout in training mode after each hidden layer's
  activation, as nn.Sequential(Linear, act, Dropout(p), ...) does. torch's own masks are
  recorded (F.dropout of ones: 0 or 1/(1-p) per unit) and replayed in the network, so the
  test can hand our model the same masks. Recorded: the loss and gradient of one batch,
  one plain SGD step, and one SAM step (davda54/sam: the ascent and the descent gradient
  with the same mask).
- Weight averaging: torch.optim.swa_utils.AveragedModel over an SGD (momentum 0.9)
  full-batch trajectory, SWA updated after steps start, start + every, ... and EMA
  (get_ema_multi_avg_fn(decay)) after every step. Recorded: the averaged parameters.

Parameters are one flat vector in nn.Linear layout (each layer's weight row-major, then
its bias), as in tests/data/torch_reference.json.

Run: python3 scripts/torch_knobs_reference.py   (needs `pip install torch`; not needed by
`make test`, which reads the JSON it writes).
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

torch.set_default_dtype(torch.float64)
ACTS = {"tanh": torch.tanh, "relu": torch.relu}


def linears(widths, init):
    """nn.Linear layers with the flat vector `init` loaded into them."""
    layers = [torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    flat = torch.tensor(init)
    at = 0
    with torch.no_grad():
        for layer in layers:
            for p in (layer.weight, layer.bias):
                n = p.numel()
                p.copy_(flat[at:at + n].view_as(p))
                at += n
    assert at == flat.numel()
    return layers


def flat_of(tensors):
    return torch.cat([t.reshape(-1) for t in tensors]).tolist()


def params_of(layers):
    return [p for layer in layers for p in (layer.weight, layer.bias)]


def forward(layers, act, x, masks):
    h = x
    for i, layer in enumerate(layers):
        h = layer(h)
        if i + 1 < len(layers):
            h = ACTS[act](h)
            if masks[i] is not None:
                h = h * masks[i]
    return h


def loss_and_grad(layers, act, x, y, masks):
    for p in params_of(layers):
        p.grad = None
    loss = F.cross_entropy(forward(layers, act, x, masks), y)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in params_of(layers)]


def torch_masks(generator, rows, hidden, dropout):
    """torch's own inverted-dropout masks: F.dropout of ones in training mode."""
    out = []
    for width, p in zip(hidden, dropout):
        if p == 0:
            out.append(None)
            continue
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        out.append(F.dropout(torch.ones(rows, width), p, training=True))
    return out


def dropout_case(name, act, hidden, dropout, seed, lr=0.1, rho=0.05):
    torch.manual_seed(seed)  # nn.Linear's initialisation draws from the global stream
    g = torch.Generator().manual_seed(seed)
    widths = [2, *hidden, 3]
    rows = 12
    x = torch.randn(rows, 2, generator=g)
    y = torch.randint(0, 3, (rows,), generator=g)
    init_layers = [torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    init = flat_of(params_of(init_layers))
    masks = torch_masks(g, rows, hidden, dropout)
    # The masks are torch's: each entry 0 or 1 / (1 - p).
    for m, p in zip(masks, dropout):
        if m is not None:
            assert set(m.unique().tolist()) <= {0.0, 1.0 / (1.0 - p)}

    layers = linears(widths, init)
    loss, grad = loss_and_grad(layers, act, x, y, masks)
    sgd = [p.detach() - lr * gr for p, gr in zip(params_of(layers), grad)]

    # SAM (davda54/sam, adaptive=False) over plain SGD, the same mask for both gradients.
    norm = torch.norm(torch.stack([gr.norm(p=2) for gr in grad]), p=2)
    scale = rho / (norm + 1e-12)
    with torch.no_grad():
        eps = [gr * scale for gr in grad]
        for p, e in zip(params_of(layers), eps):
            p.add_(e)
    _, grad2 = loss_and_grad(layers, act, x, y, masks)
    with torch.no_grad():
        for p, e in zip(params_of(layers), eps):
            p.sub_(e)
    sam = [p.detach() - lr * gr for p, gr in zip(params_of(layers), grad2)]

    return {
        "name": name,
        "activation": act,
        "hidden": hidden,
        "dropout": dropout,
        "lr": lr,
        "rho": rho,
        "init": init,
        "points": x.tolist(),
        "labels": y.tolist(),
        "masks": [m.reshape(-1).tolist() if m is not None else [] for m in masks],
        "loss": loss,
        "grad": flat_of(grad),
        "after_sgd": flat_of(sgd),
        "after_sam": flat_of(sam),
    }


def averaging_case(name, act, hidden, seed, steps, average):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    widths = [2, *hidden, 3]
    x = torch.randn(12, 2, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    init = flat_of(params_of([torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:])]))
    layers = linears(widths, init)
    model = torch.nn.Sequential()
    for i, layer in enumerate(layers):
        model.append(layer)
        if i + 1 < len(layers):
            model.append(torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if average["kind"] == "swa":
        averaged = AveragedModel(model)
        due = lambda k: k >= average["start"] and (k - average["start"]) % average["every"] == 0  # noqa: E731
    else:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(average["decay"]))
        due = lambda k: True  # noqa: E731
    for k in range(1, steps + 1):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if due(k):
            averaged.update_parameters(model)
    return {
        "name": name,
        "activation": act,
        "hidden": hidden,
        "steps": steps,
        "average": average,
        "init": init,
        "points": x.tolist(),
        "labels": y.tolist(),
        "n_averaged": int(averaged.n_averaged.item()),
        "averaged": flat_of(list(averaged.module.parameters())),
        "final": flat_of(list(model.parameters())),
    }


def main():
    out = {
        "torch_version": torch.__version__,
        "dropout": [
            dropout_case("relu, dropout 0.3 / 0.1", "relu", [8, 6], [0.3, 0.1], seed=1),
            dropout_case("tanh, dropout 0.5 on the first layer only", "tanh", [8, 6], [0.5, 0.0], seed=2),
            dropout_case("relu, one layer, dropout 0.2", "relu", [16], [0.2], seed=3, lr=0.5, rho=0.2),
        ],
        "averaging": [
            averaging_case("SWA from step 3 every 2", "tanh", [8, 6], 4, 12, {"kind": "swa", "start": 3, "every": 2}),
            averaging_case("SWA every step from 1", "relu", [10], 5, 9, {"kind": "swa", "start": 1, "every": 1}),
            averaging_case("EMA decay 0.9", "tanh", [8, 6], 6, 12, {"kind": "ema", "decay": 0.9}),
        ],
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_knobs.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} (torch {torch.__version__})")


if __name__ == "__main__":
    main()

"""Golden values for the losses (tests/nn/test_loss.cpp), computed by PyTorch.

Rerun from the repository root (needs torch >= 1.13 and numpy):
    /usr/bin/python3 tests/reference/loss_golden.py
It rewrites tests/reference/fixtures/loss.json. Everything runs in float64, so the
fixture holds the exact answer for its inputs; the C++ test compares its float and
double results against it.

Tensors written:
  logits (rows, vocab), targets (rows; -1 = ignored row), ce, grad.logits
      ce = F.cross_entropy(logits, targets, ignore_index=-1)  (mean over counted rows)
  teacher, student (rows, vocab); for tau in meta["taus"]:
      kl.tau<t> = F.kl_div(log_softmax(student/t), softmax(teacher/t), reduction='batchmean') * t^2
      grad.student.tau<t> = its gradient w.r.t. student
  a, b (3, 5, 7), mse = F.mse_loss(a, b), grad.a
  for tau in meta["taus"] (distillation divergences other than the forward KL):
      rkl.tau<t> = t^2 * mean over rows of KL(softmax(student/t) || softmax(teacher/t)), grad.student.rkl.tau<t>
      topk.tau<t> = t^2 * mean over rows of sum_{i in K} q_i (log q_i - log_softmax(student/t)_i), K the
                    teacher's meta["topk"] largest logits, q = softmax over K of teacher/t; grad.student.topk.tau<t>
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import save_fixture  # noqa: E402


def main():
    torch.manual_seed(1234)
    dt = torch.float64
    rows, vocab = 8, 13
    logits = torch.randn(rows, vocab, dtype=dt) * 3.0
    logits[2] += 50.0  # a row far from zero: logsumexp must shift by the max
    targets = torch.randint(0, vocab, (rows,))
    targets[5] = -1  # an ignored row
    targets[0] = vocab - 1  # the last class is a valid target

    x = logits.clone().requires_grad_(True)
    ce = F.cross_entropy(x, targets, ignore_index=-1)
    ce.backward()

    teacher = torch.randn(rows, vocab, dtype=dt) * 2.0
    student = torch.randn(rows, vocab, dtype=dt) * 2.0
    student[3] = teacher[3]  # one identical row: contributes exactly zero
    taus = [1.0, 2.0]
    tensors = {
        "logits": logits,
        "targets": targets.to(dt),
        "ce": ce.detach().reshape(1),
        "grad.logits": x.grad,
        "teacher": teacher,
        "student": student,
    }
    for tau in taus:
        s = student.clone().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(s / tau, dim=-1), F.softmax(teacher / tau, dim=-1),
                      reduction="batchmean") * tau * tau
        kl.backward()
        tensors[f"kl.tau{int(tau)}"] = kl.detach().reshape(1)
        tensors[f"grad.student.tau{int(tau)}"] = s.grad

    a = torch.randn(3, 5, 7, dtype=dt)
    b = torch.randn(3, 5, 7, dtype=dt)
    av = a.clone().requires_grad_(True)
    mse = F.mse_loss(av, b)
    mse.backward()
    tensors.update({"a": a, "b": b, "mse": mse.detach().reshape(1), "grad.a": av.grad})

    k = 4
    for tau in taus:
        s = student.clone().requires_grad_(True)
        log_ps = F.log_softmax(s / tau, dim=-1)
        log_pt = F.log_softmax(teacher / tau, dim=-1)
        rkl = (log_ps.exp() * (log_ps - log_pt)).sum(-1).mean() * tau * tau
        rkl.backward()
        tensors[f"rkl.tau{int(tau)}"] = rkl.detach().reshape(1)
        tensors[f"grad.student.rkl.tau{int(tau)}"] = s.grad
        s = student.clone().requires_grad_(True)
        top, idx = teacher.topk(k, dim=-1)
        log_q = F.log_softmax(top / tau, dim=-1)
        log_ps = F.log_softmax(s / tau, dim=-1).gather(-1, idx)
        topk = (log_q.exp() * (log_q - log_ps)).sum(-1).mean() * tau * tau
        topk.backward()
        tensors[f"topk.tau{int(tau)}"] = topk.detach().reshape(1)
        tensors[f"grad.student.topk.tau{int(tau)}"] = s.grad

    meta = {"rows": rows, "vocab": vocab, "taus": taus, "topk": k, "ignore_index": -1, "torch": torch.__version__,
            "script": "tests/reference/loss_golden.py"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "loss.json")
    save_fixture(out, tensors, meta)
    print("wrote", out)


if __name__ == "__main__":
    main()

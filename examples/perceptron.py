"""The course's Task 1 with qlearn's network: a single perceptron y = w*x + b.

Run: python examples/perceptron.py
"""

import numpy as np
import torch

from qlearn.nets import StackedMLP

# One input, one output, no hidden layer: a perceptron (K=1 agent).
model = StackedMLP(in_dim=1, out_dim=1, hidden=(), seeds=(0,))


def predict(x: np.ndarray) -> np.ndarray:
    """Forward many inputs at once: shape [n] -> [n]."""
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32).reshape(1, -1, 1)).reshape(-1).numpy()


print("x = 5 ->", predict(np.array([5.0])))

w1, b1 = model.get_weights()          # Keras-style: [weights (1x1), bias (1,)]
print("initial weight", w1, "bias", b1)
w1[0, 0], b1[0] = 2.0, -1.0           # set y = 2x - 1
model.set_weights([w1, b1])

xs = np.linspace(-3, 3, 7)            # many inputs in one call
ys = predict(xs)
print("x:", xs)
print("y:", ys)
assert np.allclose(ys, 2 * xs - 1), "the perceptron should now compute 2x - 1"

if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    grid = np.linspace(-3, 3, 100)
    ax.plot(grid, predict(grid))
    ax.set_xlabel("x")
    ax.set_ylabel("y = w x + b")
    fig.savefig("perceptron.png", dpi=100)
    print("wrote perceptron.png")

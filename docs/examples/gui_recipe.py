"""Train in a worker thread, show progress from the main thread, cancel with a flag.

The main thread stands for a GUI's event loop: it wakes every millisecond, drains the
progress queue and, here after five epochs, presses "cancel".
"""

import queue
import threading
import time

import numpy as np

from linncore import Dense, LambdaCallback, Network

rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (5000, 4))
y = np.tanh(x @ rng.uniform(-1, 1, (4, 2)))
net = Network(
    [
        Dense((4, 64), "tanh", seed=0),
        Dense((64, 64), "tanh", seed=1),
        Dense((64, 2), "linear", seed=2),
    ]
)

progress: queue.Queue = queue.Queue()  # worker -> GUI: (epoch, loss) after every epoch
ended = [0]  # epochs finished so far (written by the worker only)


def on_epoch_end(epoch: int, logs: dict) -> None:  # runs in the worker thread
    ended[0] = epoch + 1
    progress.put((epoch, logs["loss"]))


report = LambdaCallback(on_epoch_end=on_epoch_end)
result = {}


def train() -> None:
    result["history"] = net.fit(x, y, epochs=10_000, verbose=0, callbacks=[report], seed=0)


worker = threading.Thread(target=train, daemon=True)
worker.start()

epochs_seen = 0
while worker.is_alive():  # the GUI's event loop
    time.sleep(0.001)  # ... redraw, handle clicks ...
    while not progress.empty():
        epoch, loss = progress.get_nowait()
        epochs_seen = epoch + 1
        print(f"epoch {epochs_seen}: loss {loss:.4g}")  # a GUI would move its bar here
    if epochs_seen >= 5 and not net.stop_training:
        net.stop_training = True  # the cancel button: ends the run after this epoch
        ended_at_cancel = ended[0]

history = result["history"]
print(history.stop_reason)
# the epoch that was running when the flag was set is the last one
assert len(history.epoch) <= ended_at_cancel + 1, (len(history.epoch), ended_at_cancel)

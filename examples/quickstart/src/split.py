"""Split rows into train and test sets, deterministically from the seed."""
import random
import sys

src, frac, seed, train_out, test_out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
with open(src) as f:
    header, *rows = f.read().splitlines()
random.Random(seed).shuffle(rows)
n_test = int(len(rows) * frac)
for path, part in ((test_out, rows[:n_test]), (train_out, rows[n_test:])):
    with open(path, "w") as f:
        f.write("\n".join([header, *part]) + "\n")

"""Card numbers for the benchmark scripts: 16 digits in the 4xxx range, the last one the Luhn
check digit, drawn from the given random.Random. Imported by import-bench.sh and
bench-http.sh (which put this directory on sys.path)."""


def card(rng):
    d = [4] + [rng.randrange(10) for _ in range(14)]
    s = sum((x * 2 - 9 if x * 2 > 9 else x * 2) if i % 2 == 0 else x for i, x in enumerate(reversed(d)))
    return "".join(map(str, d)) + str((10 - s % 10) % 10)

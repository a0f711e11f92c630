"""``python -m toolkit``: the CLI without the console script (a checkout on PYTHONPATH, tools/gpu_checks.sh)."""

from toolkit.cli.app import main

if __name__ == "__main__":
    main()

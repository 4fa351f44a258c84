import sys

from projects.stock_lstm import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

import sys

from projects.char_lstm import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

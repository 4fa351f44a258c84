import sys

from projects.imdb_gru import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

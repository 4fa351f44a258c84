import sys

from projects.mnist_gan import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

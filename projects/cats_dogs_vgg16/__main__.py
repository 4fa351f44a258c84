import sys

from projects.cats_dogs_vgg16 import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

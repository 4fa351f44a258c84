import sys

from projects.autoencoder_anomaly import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

import sys

from projects.churn_ann import PROJECT
from shared.cli import main

if __name__ == "__main__":
    sys.exit(main(PROJECT))

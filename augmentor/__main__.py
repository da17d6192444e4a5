"""``python -m augmentor`` runs the same Typer app as the ``augmentor`` console script."""

from cli import main

if __name__ == "__main__":
    main()

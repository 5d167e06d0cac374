from services.router.handlers import serve
from shared.service import run_worker


def main() -> None:
    run_worker("router", serve)


if __name__ == "__main__":
    main()

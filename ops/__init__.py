"""Operations: containers and docker-compose (README "Run with docker compose"). Scripts, run by path."""

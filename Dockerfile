# Builds the single `marquee` binary; docker-compose.yml runs one service per container.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin marquee

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --create-home marquee
COPY --from=build /src/target/release/marquee /usr/local/bin/marquee
USER marquee
WORKDIR /home/marquee
ENTRYPOINT ["marquee"]
CMD ["serve", "--command-addr", "0.0.0.0:8080", "--query-addr", "0.0.0.0:8081"]

# syntax=docker/dockerfile:1
#
# Ferry container image: one static `ferry` binary; the subcommand (server,
# worker, sim, ...) is chosen by the container's command, so docker-compose.yml
# builds this one image for every Ferry service.

# ---- build stage ------------------------------------------------------------
# The full Go toolchain lives only here; it never reaches the final image.
# go.mod says `go 1.26.8`, so build with a 1.26 toolchain.
FROM golang:1.26 AS build
WORKDIR /src

# Download modules in their own layer so a source-only change reuses the cache.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# CGO_ENABLED=0: a fully static binary, so it runs on distroless/static with no
# libc. -trimpath drops local paths for reproducible builds; -s -w strip the
# symbol table and DWARF info to shrink the binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ferry ./cmd/ferry

# ---- final stage ------------------------------------------------------------
# distroless/static: no shell, no package manager, just CA certificates,
# tzdata and /etc/passwd -- the smallest attack surface for a static binary.
# The :nonroot variant already defines the `nonroot` user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /ferry

# Never run as root: a compromised process gets no root in the container.
USER nonroot:nonroot

# `ferry server` serves the HTTP API here (FERRY_HTTP_ADDR=0.0.0.0:8080 in
# compose; the binary's default 127.0.0.1 would not be reachable from outside).
EXPOSE 8080

# Exec form: ferry is PID 1 and receives SIGTERM directly for a graceful stop.
ENTRYPOINT ["/ferry"]
CMD ["server"]

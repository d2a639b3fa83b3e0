# syntax=docker/dockerfile:1
#
# One build, four small static images: every target carries the edge,
# processor, api and paystream binaries (the CLI doubles as the healthcheck probe,
# since distroless has no shell or wget) and differs only in its entrypoint.
#
#   docker build --target edge      -t paystream/edge .
#   docker build --target processor -t paystream/processor .
#   docker build --target api       -t paystream/api .
#   docker build --target paystream -t paystream/paystream .   # also the default

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries (no libc in the final image), no local paths in stack traces,
# no symbol tables.
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/edge ./cmd/processor ./cmd/api ./cmd/paystream

# distroless static: CA certificates, tzdata and /etc/passwd, nothing else;
# runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/edge /out/processor /out/api /out/paystream /usr/local/bin/
USER nonroot:nonroot

FROM runtime AS edge
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/edge"]

FROM runtime AS processor
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/processor"]

FROM runtime AS api
EXPOSE 8081 9092
ENTRYPOINT ["/usr/local/bin/api"]

FROM runtime AS paystream
ENTRYPOINT ["/usr/local/bin/paystream"]
CMD ["--help"]

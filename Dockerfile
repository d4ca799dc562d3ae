# Cadenza: a Discord bot that composes music. Build: docker build -t cadenza .
# Run:   docker run -e CADENZA_TOKEN=... -v cadenza-data:/data cadenza
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CADENZA_DB=/data/cadenza.db \
    CADENZA_OUTPUT=/data/clips \
    CADENZA_CACHE=/data/cache

# FluidSynth renders, FluidR3_GM is the default soundfont (MIT); MP3s are encoded in-process
# by LAME (the lameenc wheel), so no ffmpeg; libopus0 encodes voice for /play and /party.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fluidsynth libfluidsynth3 fluid-soundfont-gm \
       libopus0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The CPU build of torch first (PyPI's default wheel for Linux is the multi-GB CUDA build).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY models ./models
COPY soundfonts ./soundfonts
RUN pip install .

RUN useradd --create-home --uid 10001 cadenza && mkdir -p /data && chown cadenza /data
USER cadenza
VOLUME ["/data"]

CMD ["cadenza", "run"]

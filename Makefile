# Two commands for a newcomer (see README): `make demo` and `make test`.
# Both set everything up first: Debian packages (when root), a venv, the package.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixelscrub-installed
DEBIAN_PACKAGES := tesseract-ocr tesseract-ocr-eng dcmtk libgdcm-tools chromium orthanc fonts-dejavu-core fonts-liberation
DEMO_OUT ?= demo-out

.PHONY: setup system-deps demo test bench clean

setup: system-deps $(STAMP)

# Tesseract is required (OCR); DCMTK and GDCM's tools are the independent decoders and
# network peers the tests check against; Chromium opens the review page in the tests
# (driven by Playwright, which never downloads a browser of its own); Orthanc is the
# destination PACS the gateway tests forward to; DejaVu and Liberation are the TrueType
# faces of the stress set (pixelscrub.synth.stress); OpenJPH (optional)
# makes HTJ2K test inputs.
system-deps:
	@missing=""; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr tesseract-ocr-eng"; \
	command -v dcmdjpeg  >/dev/null || missing="$$missing dcmtk"; \
	command -v gdcmconv  >/dev/null || missing="$$missing libgdcm-tools"; \
	command -v chromium  >/dev/null || missing="$$missing chromium"; \
	command -v Orthanc   >/dev/null || missing="$$missing orthanc"; \
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || missing="$$missing fonts-dejavu-core"; \
	test -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf || missing="$$missing fonts-liberation"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "pixelscrub needs these Debian packages, please run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
	@# OpenJPH encodes the HTJ2K test inputs; older releases lack the package, so it is optional.
	@command -v ojph_compress >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjph-tools >/dev/null 2>&1; } || \
	    echo "note: openjph-tools not available, the HTJ2K tests will be skipped"; \
	  else echo "note: install openjph-tools to run the HTJ2K tests"; fi; }

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=77'
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,cluster,bench]'
	@# tesserocr runs Tesseract in-process (about 8x faster per crop); pytesseract is the fallback.
	$(BIN)/python -m pip install -q -c constraints.txt 'tesserocr>=2.6' || echo "note: tesserocr not installed, using pytesseract"
	@# RapidOCR (--verify-engine rapidocr) without its opencv-python requirement: the
	@# headless OpenCV pinned above already provides cv2, and two cv2 packages clash.
	$(BIN)/python -m pip install -q -c constraints.txt onnxruntime pyclipper shapely six
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps rapidocr-onnxruntime
	@touch $(STAMP)

demo: setup
	rm -rf $(DEMO_OUT)
	$(BIN)/pixelscrub scrub sample_data/dicom -o $(DEMO_OUT) --report $(DEMO_OUT)-report.jsonl; \
	  status=$$?; \
	  $(BIN)/pixelscrub bench score --truth sample_data/truth --output $(DEMO_OUT) || status=1; \
	  echo "outputs in $(DEMO_OUT)/, audit in $(DEMO_OUT)-report.jsonl"; exit $$status

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-report.jsonl bench-out build *.egg-info

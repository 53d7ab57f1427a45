PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench evaluate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so pip takes the local CPU wheel and not a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,postgres,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	COVERPICK_HOME=$${COVERPICK_HOME:-var/demo} $(BIN)/coverpick demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not slow and not browser"

# Cross-validated results on a catalogue with reference labels (default: the sample catalogue).
CATALOGUE ?= ../shared/catalogue
evaluate: $(STAMP)
	COVERPICK_HOME=$${COVERPICK_HOME:-var/evaluate} $(BIN)/coverpick migrate -v0
	COVERPICK_HOME=$${COVERPICK_HOME:-var/evaluate} $(BIN)/coverpick import $(CATALOGUE) --quiet
	COVERPICK_HOME=$${COVERPICK_HOME:-var/evaluate} $(BIN)/coverpick evaluate --truth $(CATALOGUE)/truth.jsonl --folds 5 --json var/evaluate.json

bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf var build *.egg-info test-artifacts

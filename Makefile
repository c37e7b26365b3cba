# The two commands: `make run` (the gateway on this machine) and `make test` (the whole suite).
# Both set up everything they need on a fresh machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
LINT  := .venv-lint
STAMP := $(VENV)/.installed

.PHONY: run test demo lint build bench clean venv system-deps

run: $(STAMP)
	$(VENV)/bin/mailgate dev

test: $(STAMP) system-deps
	$(PY) -m pytest

demo: $(STAMP)
	-@scripts/system-deps.sh  # Dovecot for the fetch step; without it that step is skipped
	$(VENV)/bin/mailgate demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	@py=$$(scripts/find-python.sh) || exit 1; \
	  [ -x $(PY) ] || $$py -m venv $(VENV) || { echo "mailgate: could not create $(VENV) with $$py" >&2; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

system-deps:
	@scripts/system-deps.sh

# Template checks: SAM's own validator, cfn-lint and checkov, in a venv of their own (the SAM CLI
# and checkov pin many packages that would otherwise fight the runtime's).
$(LINT)/.installed: requirements-lint.txt
	@py=$$(scripts/find-python.sh) || exit 1; [ -x $(LINT)/bin/python ] || $$py -m venv $(LINT)
	$(LINT)/bin/python -m pip install -q --upgrade pip
	$(LINT)/bin/python -m pip install -q -r requirements-lint.txt
	@touch $@

lint: $(LINT)/.installed
	SAM_CLI_TELEMETRY=0 $(LINT)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(LINT)/bin/cfn-lint template.yaml
	$(LINT)/bin/checkov --quiet --compact --skip-download -f template.yaml --framework cloudformation

build: $(LINT)/.installed
	@# sam build looks for python3.12 on PATH (the Lambda runtime); pyenv machines keep it aside.
	@# then the bytecode Lambda cannot write itself on its read-only /opt (scripts/compile-build.sh)
	py=$$(scripts/find-python.sh) || exit 1; \
	  PATH="$$(dirname $$py):$$PATH" SAM_CLI_TELEMETRY=0 $(LINT)/bin/sam build --template template.yaml && \
	  scripts/compile-build.sh $$py .aws-sam/build

bench: $(STAMP) system-deps
	$(PY) -m pip install -q -e '.[dev,bench]'
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(LINT) .aws-sam .local .pytest_cache

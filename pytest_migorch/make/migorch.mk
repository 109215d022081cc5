# pytest-migorch deploy-runner targets, to include from a repository's Makefile:
#
#   include $(shell python3 -c "from importlib.resources import files; \
#                                print(files('pytest_migorch') / 'make' / 'migorch.mk')")
#   (or copy this file next to your Makefile and `include migorch.mk`)
#
# Variables (set them on the command line, in the environment, or before the include):
#   SERVICE_NAME   one service (a directory under MIGORCH_ROOT); empty: every service (--all)
#   COUNT          db-migrate-up: apply only the first COUNT pending migrations
#   JOBS           db-migrate-up: apply independent services' migrations on JOBS connections
#   STEPS          db-migrate-down: roll back the STEPS newest applied migrations (default 1)
#   VERSION        db-migrate-force: the version to record (see `migorch force --help`)
#   APP_ENV        the environment, declared in each service's environments.json (every target
#                  but db-migrate-init-orchestrator needs it when services declare environments;
#                  init without it creates the tables and the first db-migrate-up adopts)
#   MIGORCH_ROOT   the services root (default: services)
#   MIGORCH        the command (default: migorch)
#   MIGORCH_FLAGS  extra options, e.g. --yes, --dry-run, --json, --lock-timeout 60
#
# The connection comes from DATABASE_URL or DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME and
# DB_SSL_MODE in the environment, read by migorch itself: it is never put on a command line, so
# the password shows neither in make's echo nor in `ps`.
#
# Targets: db-migrate-up, db-migrate-down, db-migrate-status, db-migrate-list,
# db-migrate-init-orchestrator, db-migrate-validate-orchestrator, db-migrate-force, and the
# design's names db-migrate-status-orchestrator and db-migrate-list-orchestrator (aliases).

MIGORCH ?= migorch
MIGORCH_ROOT ?= services
SERVICE_NAME ?=
COUNT ?=
JOBS ?=
STEPS ?= 1
VERSION ?=
MIGORCH_FLAGS ?=

MIGORCH_SELECTION = $(if $(strip $(SERVICE_NAME)),$(SERVICE_NAME),--all)
MIGORCH_ENV_FLAG = $(if $(strip $(APP_ENV)),--env $(APP_ENV),)
MIGORCH_COMMON = --root $(MIGORCH_ROOT) $(MIGORCH_ENV_FLAG) $(MIGORCH_FLAGS)

.PHONY: db-migrate-up db-migrate-down db-migrate-status db-migrate-list \
        db-migrate-status-orchestrator db-migrate-list-orchestrator \
        db-migrate-init-orchestrator db-migrate-validate-orchestrator db-migrate-force

## Apply pending migrations (SERVICE_NAME=svc, or every service in cross-service order; COUNT=n;
## JOBS=n: independent services side by side)
db-migrate-up:
	$(MIGORCH) up $(MIGORCH_SELECTION) $(if $(strip $(COUNT)),--count $(COUNT),) $(if $(strip $(JOBS)),--jobs $(JOBS),) $(MIGORCH_COMMON)

## Roll back the STEPS newest applied migrations of SERVICE_NAME (required)
db-migrate-down:
	@test -n "$(strip $(SERVICE_NAME))" || { echo "db-migrate-down: set SERVICE_NAME=<service>" >&2; exit 2; }
	$(MIGORCH) down $(SERVICE_NAME) --steps $(STEPS) $(MIGORCH_COMMON)

## Applied, pending, failed, drift, dirty state and the last runs
db-migrate-status:
	$(MIGORCH) status $(MIGORCH_SELECTION) $(MIGORCH_COMMON)

## Every migration with its state, risk level and estimate
db-migrate-list:
	$(MIGORCH) list $(MIGORCH_SELECTION) $(MIGORCH_COMMON)

## The design's names for the two targets above
db-migrate-status-orchestrator: db-migrate-status
db-migrate-list-orchestrator: db-migrate-list

## Create the tracking tables and adopt what golang-migrate already applied (without APP_ENV:
## create them and name what the first db-migrate-up adopts)
db-migrate-init-orchestrator:
	$(MIGORCH) init $(MIGORCH_SELECTION) $(MIGORCH_COMMON)

## Every static check; no database needed
db-migrate-validate-orchestrator:
	$(MIGORCH) validate $(MIGORCH_SELECTION) --root $(MIGORCH_ROOT) $(MIGORCH_FLAGS)

## Clear a dirty state after a manual fix (SERVICE_NAME and VERSION required)
db-migrate-force:
	@test -n "$(strip $(SERVICE_NAME))" -a -n "$(strip $(VERSION))" || { echo "db-migrate-force: set SERVICE_NAME=<service> VERSION=<version>" >&2; exit 2; }
	$(MIGORCH) force $(SERVICE_NAME) $(VERSION) $(MIGORCH_COMMON)

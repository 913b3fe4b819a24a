"""The examples' second database: WarehouseCustomer lives on the `warehouse` alias."""

WAREHOUSE_ALIAS = "warehouse"
WAREHOUSE_MODELS = {"warehousecustomer"}
APP_LABEL = "batchjobs_examples"


class WarehouseRouter:
    """Sends the warehouse table to the `warehouse` alias and nothing else there. Listed before
    the settings' OperatorDatabasesRouter, which keeps every other table on `default`."""

    def _alias(self, model) -> str:
        return WAREHOUSE_ALIAS if model._meta.model_name in WAREHOUSE_MODELS else "default"

    def db_for_read(self, model, **hints):
        return self._alias(model)

    def db_for_write(self, model, **hints):
        return self._alias(model)

    def allow_relation(self, obj1, obj2, **hints):
        # Instances, not type(obj): request.user is a lazy wrapper whose type has no _meta.
        return self._alias(obj1) == self._alias(obj2)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Only this app's warehouse table goes there: batchjobs' old 0001 (which still lists
        # the example models) creates nothing on the warehouse, this app's 0001 does.
        if model_name in WAREHOUSE_MODELS:
            return db == WAREHOUSE_ALIAS and app_label == APP_LABEL
        if db == WAREHOUSE_ALIAS:
            return False
        return None  # the next router's rule: `default` only

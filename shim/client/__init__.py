"""An asyncio client of the Kubernetes API: requests, watches, informers and work queues.

The scheduler and the controllers use it to talk to the API server like any other client.
"""
from shim.client.api import (ApiError, Client, Resource, WatchEvent, is_conflict, is_gone,
                             is_not_found, retry_on_conflict)
from shim.client.config import ClientConfig, load_kubeconfig, ssl_context
from shim.client.informer import Informer, key_of
from shim.client.workqueue import ShutDown, WorkQueue

__all__ = ["ApiError", "Client", "ClientConfig", "Informer", "Resource", "ShutDown", "WatchEvent",
           "WorkQueue", "is_conflict", "is_gone", "is_not_found", "key_of", "load_kubeconfig",
           "retry_on_conflict", "ssl_context"]

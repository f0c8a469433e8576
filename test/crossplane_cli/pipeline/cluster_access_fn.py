"""The pipeline step before function-signals in the two-function tests: what
Modelplane's own cluster function does there. It composes the workload
cluster's provider-kubernetes ClusterProviderConfig and, once that exists
(is observed), points the XR's status.providerConfigRef at it.

Written with the official Python SDK (crossplane-function-sdk-python) because
function-patch-and-transform, which could express this as patches, is not
served by the Go module proxy (test/peers/versions.env), and Modelplane's
function is not part of this repository.

Usage: python cluster_access_fn.py HOST:PORT   (plaintext gRPC)
"""

from __future__ import annotations

import sys

from crossplane.function import resource, response, runtime
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

RESOURCE = "cluster-providerconfig"


class ClusterAccess(grpcv1.FunctionRunnerServiceServicer):
    async def RunFunction(self, req: fnv1.RunFunctionRequest, _context) -> fnv1.RunFunctionResponse:
        rsp = response.to(req)
        xr = resource.struct_to_dict(req.observed.composite.resource)
        namespace = (req.input and resource.struct_to_dict(req.input).get("kubeconfigNamespace")) or "default"
        resource.update(rsp.desired.resources[RESOURCE], {
            "apiVersion": "kubernetes.m.crossplane.io/v1alpha1",
            "kind": "ClusterProviderConfig",
            "spec": {"credentials": {"source": "Secret", "secretRef": {
                "namespace": namespace,
                "name": f"{xr['metadata']['name']}-kubeconfig",
                "key": "kubeconfig",
            }}},
        })
        if RESOURCE in req.observed.resources:
            observed = resource.struct_to_dict(req.observed.resources[RESOURCE].resource)
            resource.update(rsp.desired.composite, {"status": {"providerConfigRef": {
                "name": observed["metadata"]["name"],
                "kind": observed["kind"],
            }}})
        return rsp


if __name__ == "__main__":
    runtime.serve(ClusterAccess(), sys.argv[1], creds=None, insecure=True)

// Command etcd is the etcd server, built from the published etcd server module at the
// version pinned in go.mod. scripts/install-etcd.sh (shim/tools/etcd_install.py) builds it.
//
// `go install go.etcd.io/etcd/v3@vX` is refused because etcd's main module uses replace
// directives; this wrapper requires go.etcd.io/etcd/server/v3 instead and calls its main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }

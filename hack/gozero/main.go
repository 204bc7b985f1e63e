// Command gozero writes, for every Go API struct reachable from the served kinds, the facts
// about its JSON encoding that server-side apply needs to see objects the way the Go
// apiserver does: which fields a zero value encodes (and as what), and which fields are
// dropped when empty (omitempty / omitzero). Output: shim/api/gotypes.json.
//
//	cd hack/gozero && GOPROXY=off go run . > ../../shim/api/gotypes.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

type entry struct {
	Zero map[string]any    `json:"zero"`
	Omit map[string]string `json:"omit,omitempty"`
}

var (
	marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	out       = map[string]*entry{}
)

func defName(t reflect.Type) string {
	p := t.PkgPath()
	parts := strings.SplitN(p, "/", 2)
	dom := strings.Split(parts[0], ".")
	for i, j := 0, len(dom)-1; i < j; i, j = i+1, j-1 {
		dom[i], dom[j] = dom[j], dom[i]
	}
	name := strings.Join(dom, ".")
	if len(parts) > 1 {
		name += "." + strings.ReplaceAll(parts[1], "/", ".")
	}
	return name + "." + t.Name()
}

func isLeaf(t reflect.Type) bool {
	return t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler)
}

func walk(t reflect.Type) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || isLeaf(t) || t.PkgPath() == "" {
		return
	}
	name := defName(t)
	if _, seen := out[name]; seen {
		return
	}
	e := &entry{Omit: map[string]string{}}
	out[name] = e
	zero, err := runtime.DefaultUnstructuredConverter.ToUnstructured(reflect.New(t).Interface())
	if err != nil {
		fmt.Fprintln(os.Stderr, name, err)
		delete(out, name)
		return
	}
	e.Zero = zero
	fields(t, e)
}

func fields(t reflect.Type, e *entry) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		opts := strings.Split(tag, ",")
		name := opts[0]
		inline, omitempty, omitzero := false, false, false
		for _, o := range opts[1:] {
			switch o {
			case "inline":
				inline = true
			case "omitempty":
				omitempty = true
			case "omitzero":
				omitzero = true
			}
		}
		if inline || (f.Anonymous && name == "") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			fields(ft, e)
			continue
		}
		if name == "" {
			name = f.Name
		}
		walk(f.Type)
		ft := f.Type
		switch {
		case !omitempty && !omitzero:
		case ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Interface:
			e.Omit[name] = "p"
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8:
			e.Omit[name] = "b"
		case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map:
			e.Omit[name] = "c"
		case ft.Kind() == reflect.Struct:
			if omitzero {
				e.Omit[name] = "t"
			}
		default:
			e.Omit[name] = "s"
		}
	}
}

func main() {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		admissionregistrationv1.AddToScheme, appsv1.AddToScheme, authenticationv1.AddToScheme,
		authorizationv1.AddToScheme, autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, certificatesv1.AddToScheme, coordinationv1.AddToScheme,
		corev1.AddToScheme, discoveryv1.AddToScheme, eventsv1.AddToScheme,
		flowcontrolv1.AddToScheme, networkingv1.AddToScheme, nodev1.AddToScheme,
		policyv1.AddToScheme, rbacv1.AddToScheme, schedulingv1.AddToScheme, storagev1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	for _, t := range s.AllKnownTypes() {
		walk(t)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("{")
	for i, n := range names {
		b, err := json.Marshal(out[n])
		if err != nil {
			panic(err)
		}
		k, _ := json.Marshal(n)
		sep := ","
		if i == len(names)-1 {
			sep = ""
		}
		fmt.Printf("%s: %s%s\n", k, b, sep)
	}
	fmt.Println("}")
}

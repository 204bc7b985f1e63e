// Command protobuf-types writes shim/api/protobuf_types.json: for every built-in kind the
// shim may receive, how its Kubernetes protobuf encoding maps onto its JSON form.
//
// The table is read off the Go API types by reflection (field numbers from the
// `protobuf` struct tags, JSON names and omitempty/omitzero from the `json` tags,
// pointer-ness from the field types), so the Python decoder can rebuild exactly the JSON
// that encoding/json would produce for the decoded Go object. Run by hand (the output is
// committed), from this directory, with the k8s.io modules in the Go module cache:
//
//	GOPROXY=off GOFLAGS=-mod=mod go run . > ../../shim/api/protobuf_types.json
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
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Leaf types with their own JSON and protobuf forms, decoded specially.
var leaves = map[string]string{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":       "time",
	"k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime":  "mtime",
	"k8s.io/apimachinery/pkg/apis/meta/v1.Duration":   "dur",
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":   "fv1",
	"k8s.io/apimachinery/pkg/api/resource.Quantity":   "qty",
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString": "ios",
	"k8s.io/apimachinery/pkg/runtime.RawExtension":    "raw",
}

const (
	fOmitEmpty = 1
	fInline    = 2
	fPointer   = 4
	fOmitZero  = 8
)

var (
	types     = map[string][]any{}
	marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
)

func typeID(t reflect.Type) string {
	p := t.PkgPath()
	p = strings.TrimPrefix(p, "k8s.io/api/")
	p = strings.TrimPrefix(p, "k8s.io/apimachinery/pkg/apis/")
	p = strings.TrimPrefix(p, "k8s.io/apimachinery/pkg/")
	return p + "." + t.Name()
}

func hasProtoMarshal(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("Marshal")
	return ok
}

func ref(t reflect.Type) any {
	if t.Kind() == reflect.Pointer {
		return map[string]any{"p": ref(t.Elem())}
	}
	if leaf, ok := leaves[t.PkgPath()+"."+t.Name()]; ok {
		return leaf
	}
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) {
		panic("unexpected json.Marshaler " + t.String())
	}
	switch t.Kind() {
	case reflect.String:
		return "s"
	case reflect.Bool:
		return "b"
	case reflect.Int32:
		return "i32"
	case reflect.Int64, reflect.Int:
		return "i64"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		if t.Name() != "" && hasProtoMarshal(t) {
			// a named slice (ExtraValue, Verbs) travels as a message of `items` (field 1)
			return map[string]any{"lm": ref(t.Elem())}
		}
		return map[string]any{"l": ref(t.Elem())}
	case reflect.Map:
		return map[string]any{"k": ref(t.Key()), "v": ref(t.Elem())}
	case reflect.Struct:
		id := typeID(t)
		if _, done := types[id]; !done {
			types[id] = nil // break cycles (JSONSchemaProps-like recursion)
			types[id] = fields(t)
		}
		return map[string]any{"m": id}
	}
	panic("unsupported type " + t.String())
}

func fields(t reflect.Type) []any {
	out := []any{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		jtag := f.Tag.Get("json")
		if jtag == "-" {
			continue
		}
		parts := strings.Split(jtag, ",")
		name, flags := parts[0], 0
		for _, o := range parts[1:] {
			switch o {
			case "omitempty":
				flags |= fOmitEmpty
			case "omitzero":
				flags |= fOmitZero
			}
		}
		if name == "" {
			if !f.Anonymous {
				name = f.Name
			} else {
				flags |= fInline
			}
		}
		num := 0
		if ptag := f.Tag.Get("protobuf"); ptag != "" {
			fmt.Sscanf(strings.Split(ptag, ",")[1], "%d", &num)
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			flags |= fPointer
			ft = ft.Elem()
		}
		if flags&fOmitZero != 0 && leaves[ft.PkgPath()+"."+ft.Name()] != "time" {
			panic("omitzero is only decoded for metav1.Time: " + t.String() + "." + f.Name)
		}
		out = append(out, []any{num, name, flags, ref(ft)})
	}
	return out
}

func main() {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		admissionregistrationv1.AddToScheme, appsv1.AddToScheme, authenticationv1.AddToScheme,
		authorizationv1.AddToScheme, autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, certificatesv1.AddToScheme, coordinationv1.AddToScheme,
		corev1.AddToScheme, discoveryv1.AddToScheme, eventsv1.AddToScheme, flowcontrolv1.AddToScheme,
		networkingv1.AddToScheme, nodev1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme,
		resourcev1.AddToScheme, schedulingv1.AddToScheme, storagev1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Group: "meta.k8s.io", Version: "v1"})
	kinds := map[string]string{}
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Kind == "WatchEvent" || (strings.HasSuffix(gvk.Kind, "Options") && gvk.Kind != "DeleteOptions") {
			continue
		}
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		if _, leaf := leaves[t.PkgPath()+"."+t.Name()]; leaf {
			continue
		}
		kinds[gvk.GroupVersion().String()+"/"+gvk.Kind] = ref(t).(map[string]any)["m"].(string)
	}
	// Deterministic output: one type per line.
	var b strings.Builder
	b.WriteString("{\"kinds\": ")
	kj, _ := json.Marshal(kinds)
	b.Write(kj)
	b.WriteString(",\n\"types\": {\n")
	ids := make([]string, 0, len(types))
	for id := range types {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		tj, _ := json.Marshal(types[id])
		idj, _ := json.Marshal(id)
		b.Write(idj)
		b.WriteString(": ")
		b.Write(tj)
		if i < len(ids)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}}\n")
	os.Stdout.WriteString(b.String())
}

package rules

import "reflect"

// SpecType is the typed form of one rule, for the sample's drift test.
var SpecType = reflect.TypeOf(spec{})

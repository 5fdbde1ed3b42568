// Package fingerprint keeps an API honest about its versions, the way
// oslo.versionedobjects' ObjectVersionChecker does, and checks the wire too.
//
// Compute takes a fingerprint of every message an API uses (per field:
// number, name, type, cardinality, (tandem.since) and the oneof it belongs
// to), of every enum those messages use (per value: number, name and
// (tandem.enum_since)) and of its methods.
// A committed file (testdata/fingerprints.json, say) records the snapshot
// of every released version. Check fails when a message or method changed
// while (tandem.version) stayed, when a change breaks the wire against any
// recorded version (a field number reused with another type or
// cardinality, a field removed without being reserved, a field moved into
// or out of a oneof, an enum value removed without its number reserved or
// renumbered, a method removed), when a new field's (tandem.since) or a new
// enum value's (tandem.enum_since) is not a new version, and when the
// current version is not recorded yet. Record adds the current version;
// Verify wraps both for a test with an -update flag:
//
//	var update = flag.Bool("update", false, "record the API's current version in testdata/fingerprints.json")
//
//	func TestFingerprints(t *testing.T) {
//		fingerprint.Verify(t, "testdata/fingerprints.json", *update, svc)
//	}
package fingerprint

package primary

// FuseErr exposes the adapter's error translation to the shared errno table
// (adaptertest.Errno).
var FuseErr = fuseErr

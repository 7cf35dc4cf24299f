package server

// IsOpenPath lets the tests check which paths skip authentication.
var IsOpenPath = isOpenPath

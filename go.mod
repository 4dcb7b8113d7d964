module github.com/lighthouse-fs/lighthouse

go 1.26.8

require (
	bazil.org/fuse v0.0.0-20230120002735-62a210ff1fd5 // indirect
	github.com/hanwen/go-fuse/v2 v2.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

package main

// A minimal client for etcd's v3 JSON gateway (grpc-gateway over the KV service): POST
// /v3/kv/range and /v3/kv/put with JSON bodies whose keys and values are base64 (encoding/json
// does that for []byte) and whose 64-bit integers are decimal strings.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type etcdClient struct {
	base string
	http *http.Client
}

func newEtcdClient(url string) *etcdClient {
	return &etcdClient{
		base: strings.TrimRight(url, "/"),
		http: &http.Client{Timeout: 10 * time.Second},
	}
}

type keyValue struct {
	Key         []byte `json:"key"`
	Value       []byte `json:"value"`
	ModRevision string `json:"mod_revision"`
}

func (c *etcdClient) call(path string, req, resp interface{}) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := c.http.Post(c.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("etcd %s: %v", path, err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("etcd %s: reading the answer: %v", path, err)
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: HTTP %d: %s", path, r.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("etcd %s: bad answer %q: %v", path, data, err)
	}
	return nil
}

// prefixEnd is the range_end that selects every key starting with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0} // every key
}

// rangePrefix returns every key (with its value) that starts with prefix, in key order.
func (c *etcdClient) rangePrefix(prefix string) ([]keyValue, error) {
	req := struct {
		Key      []byte `json:"key"`
		RangeEnd []byte `json:"range_end"`
	}{[]byte(prefix), prefixEnd([]byte(prefix))}
	var resp struct {
		Kvs   []keyValue `json:"kvs"`
		More  bool       `json:"more"`
		Count string     `json:"count"`
	}
	if err := c.call("/v3/kv/range", req, &resp); err != nil {
		return nil, err
	}
	if resp.More {
		return nil, fmt.Errorf("etcd range %q: answer cut short (more=true)", prefix)
	}
	return resp.Kvs, nil
}

func (c *etcdClient) put(key string, value []byte) error {
	req := struct {
		Key   []byte `json:"key"`
		Value []byte `json:"value"`
	}{[]byte(key), value}
	var resp struct{}
	return c.call("/v3/kv/put", req, &resp)
}

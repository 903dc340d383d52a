// Package ocr is a placeholder until the OCR branch lands (replaced by it).
package ocr

import (
	"context"
	"errors"
	"image"
)

type PSM int

const (
	PSMAuto       PSM = 3
	PSMBlock      PSM = 6
	PSMSingleLine PSM = 7
	PSMSparse     PSM = 11
)

type Word struct {
	Text string
	Box  image.Rectangle
	Conf float64
}
type Line struct {
	Text  string
	Box   image.Rectangle
	Conf  float64
	Words []Word
}
type Config struct {
	Lang, DataDir string
	Engines       int
}

var ErrUnavailable = errors.New("ocr: not available")

type Pool struct{}

func NewPool(cfg Config) (*Pool, error) { return nil, ErrUnavailable }
func (p *Pool) Read(ctx context.Context, img *image.Gray, psm PSM) ([]Line, error) {
	return nil, ErrUnavailable
}
func (p *Pool) Close() error     { return nil }
func (p *Pool) Describe() string { return "none" }

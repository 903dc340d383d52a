// Command draw renders textfind's boxes over an image, for looking at misses.
//
//	go run ./pipeline/textfind/internal/eval/draw IN.png OUT.png [x0 y0 x1 y1]
package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strconv"

	"github.com/dicomdeid/dicomdeid/pipeline/textfind"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	im, err := png.Decode(f)
	if err != nil {
		panic(err)
	}
	g := image.NewGray(im.Bounds())
	draw.Draw(g, g.Bounds(), im, im.Bounds().Min, draw.Src)
	boxes := textfind.Lines(g, textfind.Options{})
	out := image.NewRGBA(g.Bounds())
	draw.Draw(out, out.Bounds(), g, g.Bounds().Min, draw.Src)
	red := color.RGBA{255, 0, 0, 255}
	for _, r := range boxes {
		fmt.Println(r)
		for x := r.Min.X; x < r.Max.X; x++ {
			out.Set(x, r.Min.Y-1, red)
			out.Set(x, r.Max.Y, red)
		}
		for y := r.Min.Y; y < r.Max.Y; y++ {
			out.Set(r.Min.X-1, y, red)
			out.Set(r.Max.X, y, red)
		}
	}
	var res image.Image = out
	if len(os.Args) == 7 {
		v := make([]int, 4)
		for i := range v {
			v[i], _ = strconv.Atoi(os.Args[3+i])
		}
		res = out.SubImage(image.Rect(v[0], v[1], v[2], v[3]))
	}
	o, _ := os.Create(os.Args[2])
	defer o.Close()
	png.Encode(o, res)
}

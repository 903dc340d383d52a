// Package ocr reads the text burned into DICOM images with Tesseract 5
// (Debian's tesseract-ocr 5.3.0 and its LSTM eng model).
//
// A Pool keeps up to Config.Engines engines and lends one to each Read.
// It has two implementations, the same API and the same tests:
//
//   - With cgo and the build tag tesseract: Tesseract's C API
//     (tesseract/capi.h) in the process. An engine loads the language
//     once (eng.traineddata: 100 ms or more) and reads image after image;
//     the pixels go in as they are, with no encoding and no process to
//     start. It is the faster one: see BenchmarkRead and the README.
//   - Otherwise (including CGO_ENABLED=0): the tesseract command on
//     PATH, one process per Read, the image as PNG on its stdin and TSV
//     on its stdout, killed when the Read's context ends. Each Read pays
//     the process start and the model load, so it is for the pure-Go
//     build. Without the command NewPool returns ErrUnavailable.
//
// A Read's context ends the C API's recognition at the next word
// (Tesseract's cancel callback; layout analysis runs to its end, bounded
// by the image's size) and kills the command.
//
// One engine, one core. Tesseract's LSTM has OpenMP loops that ask for
// teams of 4 threads; on a service whose workers already use every core,
// that oversubscribes the machine and, measured here, makes a Read 3 to
// 6 times slower, besides keeping 3 idle libgomp threads for every OS
// thread that ever called Recognize. The command gets
// OMP_THREAD_LIMIT=1 in its environment. In the process the variable
// would not work: libgomp reads its environment once, when the dynamic
// loader runs its constructor at program start, before any Go code (an
// os.Setenv in NewPool was measured to change nothing). So the C wrapper
// sets, on the calling thread right before Recognize, the OpenMP limits
// of that thread: max active levels 0 (every parallel region runs on
// its caller alone) and num_threads 1. They are per-thread settings of
// libgomp; nothing else in the process uses OpenMP. TestOneThread checks
// that Reads start no threads.
//
// Tesseract prints through its debug_file parameter, which is set to
// /dev/null; Leptonica's warnings are silenced with its message
// severity; the command's stderr is discarded. Nothing of an image's
// text reaches a log, and errors carry no recognized text.
//
// No process isolation. The codecs decode untrusted compressed bytes in
// worker processes (pipeline/codec), because a decoder parses what an
// attacker wrote. Tesseract here parses nothing: its input is our own
// decoded 8-bit raster, width x height bytes with a stride, copied by
// SetImage; Read refuses an empty image, one over MaxSide a side or
// MaxPixels in all, and a buffer shorter than its bounds, so the work
// and memory of a Read are bounded by the image's size. Its one file
// input, the language model, is installed by the operator. What an
// attacker controls is pixel values, which steer recognition but not
// memory layout, and the robustness tests (noise, one pixel, a very
// wide strip) run both implementations on such images.
package ocr

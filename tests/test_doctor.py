"""`deepdive-lab doctor`: the GPU lines say what torch and llama.cpp really offer on this machine."""

from lab.doctor import LLAMA_CPU_BUILD, gpu_lines, report


def test_gpu_lines_say_what_torch_sees():
    import torch

    text = "\n".join(gpu_lines())
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    assert f"torch         {torch.__version__}" in text
    assert f"CUDA: {'yes' if cuda else 'no'}, MPS: {'yes' if mps else 'no'}" in text
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    expected = names or (["Apple GPU (MPS)"] if mps else ["no GPU: torch sees neither CUDA nor MPS"])
    assert all(name in text for name in expected)
    assert ("bf16:" in text) == cuda


def test_report_names_the_llama_cpp_build_and_the_gpu():
    import llama_cpp

    lines = report(assemble=False)
    llama = next(line for line in lines if line.startswith("llama.cpp"))
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    assert llama.endswith("GPU offload: yes" if offload else LLAMA_CPU_BUILD)
    assert any(line.startswith("GPU") for line in lines)

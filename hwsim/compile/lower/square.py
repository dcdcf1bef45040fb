"""The exact step that lowers a square written ``Pow(t, 2)`` or ``Mul(t, t)`` (ReLU² of BitNet
b1.58 2B4T: ``r = Relu(x)``, ``Pow(r, 2)``) between two 8-bit quantizers to a ``LutAct``."""

from __future__ import annotations

from hwsim.compile.patterns import is_square

from .pointwise import LowerPointwise


class LowerSquare(LowerPointwise):
    """Exact: :class:`~hwsim.compile.lower.pointwise.LowerPointwise` where the chain between
    the two quantizers may also hold a square, ``Pow(t, 2)`` or ``Mul(t, t)`` (a function of
    one code): ``DequantizeLinear → Relu → Pow(r, 2) | Mul(r, r) → QuantizeLinear [→ Clip]``
    (the front end's ``relu_squared`` pattern) becomes one ``LutAct`` whose table is those
    nodes run in onnxruntime on all 256 input codes, so the outputs stay ``==``."""

    exact = True

    @staticmethod
    def _unary(model, node) -> bool:
        if node.op_type in ("Mul", "Pow") and is_square(model, node) \
                and model.get_initializer(node.input[0]) is None:
            return len(node.output) == 1
        return LowerPointwise._unary(model, node)

    def _chain(self, model, body: list) -> list:
        """As the base, with a reader listed once per input it fills (``Mul(t, t)`` reads
        ``t`` twice)."""
        while True:
            users = list({id(n): n for n in model.find_consumers(body[-1].output[0]) or []}
                         .values())
            if len(users) != 1 or not self._unary(model, users[0]) \
                    or (users[0].op_type == "Sigmoid" and self._is_silu(model, users[0])):
                return body
            body.append(users[0])

    def _match(self, model, node):
        """Only chains that hold a square (the rest is :class:`LowerPointwise`'s)."""
        match = super()._match(model, node)
        if match is None or not any(is_square(model, n) for n in match.body):
            return None
        return match

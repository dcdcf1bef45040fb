"""Dialect ops kept in their own modules; :mod:`hwsim.compile.dialect` imports them."""

"""Golden of the spiking front end: the LIF neuron array."""
